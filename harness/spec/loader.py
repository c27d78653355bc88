"""YAML → `Topology`, with every problem reported as `file:line: field: problem (fix)`.

The YAML is composed (not just loaded) so that each key path keeps the line it came from;
pydantic error locations and our own cross-reference checks are mapped back to those lines.
Whatever the input, the result is a `Topology` or a `SpecError` whose problems are single lines
with a line number inside the file: never a traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from harness.errors import SpecError
from harness.spec.models import Experiment, Service, Topology
from harness.spec.semantic import check_merged, check_topology, resolve_fault_ref

Loc = tuple[Any, ...]

MAX_VALUES = 100_000  # aliases can expand a small file exponentially ("billion laughs")
START_FROM = "start from topologies/ha.yaml"
_INT_FIX = f"use at most {2**63 - 1}"


class _BadYaml(Exception):
    """A problem found while building Python values from the YAML nodes: it has a line and a path."""

    def __init__(self, line: int, path: Loc, message: str) -> None:
        self.line, self.path, self.message = line, path, message


_COMMENTED_INJECTION = re.compile(r"[ \t]+(#\d+)\b")


class _Builder:
    """Builds plain Python values from a composed YAML node, recording the line of every key path."""

    def __init__(self, text: str = "") -> None:
        self.text = text  # the source, to see what YAML dropped as a comment
        self.lines: dict[Loc, int] = {}
        self.scalars = yaml.SafeLoader("")
        self.count = 0
        self.active: set[int] = set()  # nodes being built: an alias to one of them is a cycle

    def build(self, node: yaml.Node, path: Loc) -> Any:
        line = node.start_mark.line + 1
        self.lines.setdefault(path, line)  # a key's own line wins over the line its value starts on
        self.count += 1
        if self.count > MAX_VALUES:
            raise _BadYaml(
                line,
                path,
                f"the file expands to more than {MAX_VALUES} values (remove the aliases)",
            )
        if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            return self.scalar(node, path)
        if id(node) in self.active:
            raise _BadYaml(
                line, path, "this alias refers to the value that contains it (remove the recursion)"
            )
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise _BadYaml(
                        key_line,
                        path,
                        "a key must be a plain name, not a list or mapping (quote it)",
                    )
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _BadYaml(
                        key_line, path, "merge keys (<<) are not supported (write the keys out)"
                    )
                key = self.scalar(key_node, path)
                if key in out:
                    raise _BadYaml(key_line, path + (key,), "duplicate key (keep one)")
                self.lines[path + (key,)] = key_line
                out[key] = self.build(value_node, path + (key,))
            return out
        finally:
            self.active.discard(id(node))

    def scalar(self, node: yaml.Node, path: Loc) -> Any:
        text = str(getattr(node, "value", ""))
        shown = text if len(text) <= 40 else text[:37] + "..."
        refers = (path[-1:] == ("during",) and text.startswith("fault:")) or path[-1:] == ("fault",)
        if refers and getattr(node, "style", None) is None:
            # `during: fault:kill #2` is `fault:kill` to YAML: ` #` starts a comment.
            dropped = _COMMENTED_INJECTION.match(self.text, node.end_mark.index)
            if dropped:
                raise _BadYaml(
                    node.start_mark.line + 1,
                    path,
                    f"'{dropped[1]}' after '{shown}' starts a YAML comment, so it would be "
                    f'dropped (quote the whole value: "{shown} {dropped[1]}")',
                )
        try:
            value = self.scalars.construct_object(node, deep=True)
        except yaml.MarkedYAMLError:
            raise
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. 2024-13-45, a 5000-digit int
            if node.tag == "tag:yaml.org,2002:int":
                raise _BadYaml(
                    node.start_mark.line + 1, path, f"'{shown}' is too large ({_INT_FIX})"
                ) from None
            raise _BadYaml(
                node.start_mark.line + 1,
                path,
                f"cannot read '{shown}': {exc} (quote it to make it a string)",
            ) from None
        # A 64-bit range keeps every later str() safe (Python refuses str() of a 4300-digit int).
        if isinstance(value, int) and value.bit_length() > 63:
            raise _BadYaml(node.start_mark.line + 1, path, f"'{shown}' is too large ({_INT_FIX})")
        return value


def read_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return the data and a map from key path to line number."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{path}:1: (file): not found (check the path)"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            [f"{path}:1: (file): not UTF-8 text: {exc.reason} (save it as UTF-8)"]
        ) from None
    except OSError as exc:
        raise SpecError(
            [
                f"{path}:1: (file): cannot read: {exc.strerror or exc} (check the path and permissions)"
            ]
        ) from None
    last = max(1, len(text.splitlines()))

    def at(line: int) -> int:  # a mark can sit just past the end (e.g. an unclosed bracket)
        return min(max(line, 1), last)

    builder = _Builder(text)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            raise SpecError([f"{path}:1: (file): the file is empty ({START_FROM})"])
        data = builder.build(node, ())
    except _BadYaml as bad:
        raise SpecError(
            [_one_line(f"{path}:{at(bad.line)}: {_field_path(bad.path)}: {bad.message}")]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or str(exc)
        fix = "indent with spaces, not tabs" if "'\\t'" in problem else "fix the syntax"
        raise SpecError(
            [_one_line(f"{path}:{at(line)}: (yaml): invalid YAML: {problem} ({fix})")]
        ) from None
    except yaml.reader.ReaderError as exc:  # a control character: the reader knows its offset only
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise SpecError(
            [
                _one_line(
                    f"{path}:{at(line)}: (yaml): invalid YAML: {exc.reason} (remove the control character)"
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(
            [_one_line(f"{path}:1: (yaml): invalid YAML: {exc} (fix the syntax)")]
        ) from None
    except RecursionError:
        raise SpecError([f"{path}:1: (yaml): the file is nested too deeply (flatten it)"]) from None
    builder.lines = {k: at(v) for k, v in builder.lines.items()}
    return data, builder.lines


def line_for(lines: dict[Loc, int], loc: Loc) -> int:
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc, 1)


_PLAIN = re.compile(r"^[A-Za-z0-9_-]+$")


def _part(part: Any) -> str:
    """One key of a field path: as written when plain, else quoted with whitespace escaped."""
    text = str(part)
    if _PLAIN.match(text):
        return text
    escaped = "".join(
        c if c.isprintable() and not c.isspace() and c not in '"\\' else _escape(c) for c in text
    )
    return f'["{escaped}"]'


def _escape(c: str) -> str:
    if c in '"\\':
        return "\\" + c
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def _field_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = _part(part)
            out += text if not out or text.startswith("[") else f".{text}"
    return out or "(top-level)"


def _one_line(problem: str) -> str:
    """A problem is one line: line breaks and other control characters from the input are escaped."""
    return "".join(c if c.isprintable() or c == " " else _escape(c) for c in problem)


def _clean_loc(loc: Loc, data: Any, keep_last: bool) -> Loc:
    """Keep the parts of a pydantic location that are keys in the YAML (dropping union tags such as
    'haproxy' or 'list[str]' and pydantic's '[key]'); `keep_last` keeps a final part that is absent
    from the data because it names a missing or unknown field."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict):
            key = part if part in node else next((k for k in node if str(k) == str(part)), _ABSENT)
            if key is not _ABSENT:
                out.append(key)
                node = node[key]
                continue
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
            continue
        if keep_last and i == len(loc) - 1:
            out.append(part)
    return tuple(out)


_ABSENT = object()

_KINDS = [
    k for m in get_args(get_args(Service)[0]) for k in get_args(m.model_fields["kind"].annotation)
]

_NAME_FIX = "use lowercase letters, digits and '-', starting with a letter, at most 31 characters"
_PATTERN_FIXES = {
    r"^[a-z][a-z0-9-]{0,30}$": _NAME_FIX,
    r"^(steady|recovery|calm|run|fault:.+)$": "write run, steady, recovery, calm or fault:<chaos step name>",
    r"^\d+[kmg]?$": "write e.g. 512m or 1g",
}

_FIXES = {
    "missing": "add it",
    "literal_error": "use one of the allowed values",
    "int_parsing": "write a whole number, e.g. 3",
    "int_type": "write a whole number, e.g. 3",
    "int_from_float": "write a whole number, e.g. 3",
    "float_parsing": "write a number, e.g. 0.5",
    "float_type": "write a number, e.g. 0.5",
    "finite_number": "write a number such as 20, not .inf or .nan",
    "bool_parsing": "write true or false",
    "bool_type": "write true or false",
    "string_type": "write text; quote it if it looks like a number, date or boolean",
    "dict_type": "write a mapping, e.g. {key: value}",
    "model_type": "write a mapping, e.g. {key: value}",
    "model_attributes_type": "write a mapping, e.g. {key: value}",
    "list_type": "write a list, e.g. [a, b]",
}

_NOISE = re.compile(r" or (instance of \w+|object to extract fields from)")


def _fix(err: Any) -> str | None:
    ctx = err.get("ctx") or {}
    bounds = {
        "greater_than_equal": ("ge", "at least"),
        "greater_than": ("gt", "more than"),
        "less_than_equal": ("le", "at most"),
        "less_than": ("lt", "less than"),
    }
    if err["type"] in bounds:
        key, words = bounds[err["type"]]
        return f"use {words} {ctx.get(key)}"
    if err["type"] == "string_pattern_mismatch":
        return _PATTERN_FIXES.get(str(ctx.get("pattern")), "see topologies/ha.yaml for the format")
    return _FIXES.get(err["type"])


def validation_problems(
    file: str, exc: ValidationError, data: Any, lines: dict[Loc, int]
) -> list[str]:
    # One line per location: the branches of a union (`str | TargetSpec`) merge into one message.
    merged: dict[Loc, tuple[list[str], str | None]] = {}
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        raw = tuple(err["loc"]) + ((ctx["key"],) if err["type"] == "unknown_key" else ())
        loc = _clean_loc(raw, data, keep_last=err["type"] in ("missing", "unknown_key"))
        msg = _NOISE.sub("", err["msg"].removeprefix("Value error, "))
        fix = _fix(err)
        if err["type"] in ("unknown_key", "value_error") or msg.endswith(")"):
            fix = None  # our own messages carry their fix already
        if raw and raw[-1] == "[key]":
            msg = f"'{loc[-1] if loc else err.get('input')}' is not a valid name"
            fix = _NAME_FIX
        if err["type"] == "union_tag_invalid":
            loc = loc + ("kind",)
            tag = ctx.get("tag")
            close = difflib.get_close_matches(str(tag), _KINDS, n=1)
            msg = f"unknown kind '{tag}'"
            fix = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(_KINDS)}"
        if err["type"] == "union_tag_not_found":
            msg = "no 'kind'"
            fix = f"add kind: one of {', '.join(_KINDS)}"
            given = err.get("input")
            close = (
                [k for k in given if difflib.get_close_matches(str(k), ["kind"], n=1, cutoff=0.6)]
                if isinstance(given, dict)
                else []
            )
            if close:  # `knid: web` hides the kind: report the misspelt key, as for any other model
                loc, msg, fix = (
                    loc + (close[0],),
                    f"unknown key '{close[0]}'",
                    "did you mean 'kind'?",
                )
        msgs = merged.setdefault(loc, ([], fix))[0]
        if msg not in msgs:
            msgs.append(msg)
    problems = []
    for loc, (msgs, fix) in merged.items():
        if len(msgs) > 1:  # e.g. "Input should be a valid string" + "Input should be a valid list"
            msgs = [msgs[0]] + [m.removeprefix("Input should be ") for m in msgs[1:]]
        problems.append((loc, " or ".join(msgs) + (f" ({fix})" if fix else "")))
    return _render(file, problems, lines)


def _render(file: str, problems: Iterable[tuple[Loc, str]], lines: dict[Loc, int]) -> list[str]:
    """`file:line: field: problem (fix)`, one line each, in file order."""
    located = [(line_for(lines, loc), _field_path(loc), msg) for loc, msg in problems]
    return [
        _one_line(f"{file}:{line}: {field}: {msg}")
        for line, field, msg in sorted(located, key=lambda p: p[0])
    ]


def load_topology(
    path: str | Path, experiments: list[str] | None = None, *, require_assertions: bool = True
) -> Topology:
    """Read, validate and cross-check a topology file and the experiments it references; raise
    one `SpecError` listing every problem. `experiments` picks experiments by name (default: all
    listed); their steps and assertions join the topology's own. The topology as it will run
    (merged and picked) is checked last: it needs an assertion, and no step may hit a container
    an earlier step removed. References to a repeated step's later injections (`NAME#2`) come
    back as the schedule names them (`NAME #2`). `require_assertions=False` is for `harness up`,
    which judges nothing."""
    path = Path(path)
    topo, lines, found = _load_one(path)
    if not topo.experiments:
        if experiments:
            raise SpecError(
                _render(str(path), found, lines)
                + [
                    f"{path}:1: experiments: none declared, cannot pick {', '.join(experiments)} "
                    "(add experiments: [chaos/<file>.yaml])"
                ]
            )
        merged = check_merged(topo, require_assertions=require_assertions)
        problems = _render(str(path), [*found, *merged], lines)
        if problems:
            raise SpecError(problems)
        return canonical_references(topo)
    if found:
        raise SpecError(_render(str(path), found, lines))
    return _with_experiments(path, topo, lines, experiments, require_assertions)


# Where an item of the merged topology came from: (file, its line map, its index in that file).
_Source = tuple[str, dict[Loc, int], int]


def _with_experiments(
    path: Path,
    topo: Topology,
    lines: dict[Loc, int],
    pick: list[str] | None,
    require_assertions: bool = True,
) -> Topology:
    problems: list[str] = []
    loaded: list[tuple[Experiment, str, dict[Loc, int]]] = []
    for i, rel in enumerate(topo.experiments):
        file = path.parent / rel
        if not file.is_file():
            problems.append(
                f"{path}:{line_for(lines, ('experiments', i))}: experiments[{i}]: no file {file} "
                "(paths are relative to the topology file)"
            )
            continue
        try:
            data, exp_lines = read_yaml(file)
            exp = Experiment.model_validate(data)
        except SpecError as exc:
            problems += exc.problems
            continue
        except ValidationError as exc:
            problems += validation_problems(str(file), exc, data, exp_lines)
            continue
        view = topo.model_copy(update={"chaos": exp.chaos, "assertions": exp.assertions})
        found = [
            (loc, msg)
            for loc, msg in check_topology(view, path.parent)
            if loc[:1] in (("chaos",), ("assertions",))
        ]
        problems += _render(str(file), found, exp_lines)
        loaded.append((exp, str(file), exp_lines))
    if problems:
        raise SpecError(problems)
    names = [e.name for e, _, _ in loaded]
    for name in pick or []:
        if name not in names:
            raise SpecError(
                [
                    f"{path}:{line_for(lines, ('experiments',))}: experiments: no experiment named "
                    f"'{name}' (known: {', '.join(names)})"
                ]
            )
    chosen = [x for x in loaded if pick is None or x[0].name in pick]
    chaos = list(topo.chaos) + [s for e, _, _ in chosen for s in e.chaos]
    assertions = list(topo.assertions) + [a for e, _, _ in chosen for a in e.assertions]
    seen: set[str] = set()
    for step in chaos:
        if step.name in seen:
            raise SpecError(
                [
                    f"{path}:{line_for(lines, ('experiments',))}: experiments: two chaos steps are named "
                    f"'{step.name}' (rename one)"
                ]
            )
        seen.add(step.name)
    titles = [a.title for a in assertions]
    dup = next((t for t in titles if titles.count(t) > 1), None)
    if dup is not None:
        raise SpecError(
            [
                f"{path}:{line_for(lines, ('experiments',))}: experiments: two assertions are named "
                f"'{dup}' (give one a name:)"
            ]
        )
    merged = topo.model_copy(update={"chaos": chaos, "assertions": assertions})
    own = str(path)
    sources: dict[str, list[_Source]] = {
        "chaos": [(own, lines, i) for i in range(len(topo.chaos))]
        + [(f, ls, i) for e, f, ls in chosen for i in range(len(e.chaos))],
        "assertions": [(own, lines, i) for i in range(len(topo.assertions))]
        + [(f, ls, i) for e, f, ls in chosen for i in range(len(e.assertions))],
    }
    every_title = [a.title for a in topo.assertions] + [
        a.title for e, _, _ in loaded for a in e.assertions
    ]
    late = check_merged(merged, every_title, require_assertions=require_assertions)
    problems = _render_merged(own, lines, sources, late)
    if problems:
        raise SpecError(problems)
    return canonical_references(merged)


def _render_merged(
    own: str,
    lines: dict[Loc, int],
    sources: dict[str, list[_Source]],
    found: Iterable[tuple[Loc, str]],
) -> list[str]:
    """Problems of the merged topology, each in the file (and at the line) its item came from."""
    by_file: dict[str, tuple[dict[Loc, int], list[tuple[Loc, str]]]] = {}
    for loc, msg in found:
        file, file_lines = own, lines
        if len(loc) > 1 and loc[0] in sources and isinstance(loc[1], int):
            file, file_lines, index = sources[loc[0]][loc[1]]
            loc = (loc[0], index, *loc[2:])
        by_file.setdefault(file, (file_lines, []))[1].append((loc, msg))
    out: list[str] = []
    for file, (file_lines, problems) in by_file.items():
        out += _render(file, problems, file_lines)
    return out


def canonical_references(topo: Topology) -> Topology:
    """Fault references in assertions (`during: fault:NAME#2`, `fault: NAME #2`) rewritten to the
    injection names the schedule journals (`NAME #2`; `#1` is the step's own name)."""
    steps = {s.name: s for s in topo.chaos}
    assertions = []
    for a in topo.assertions:
        update: dict[str, Any] = {}
        if a.during.startswith("fault:"):
            name, _ = resolve_fault_ref(a.during[6:], steps)
            if name is not None:
                update["during"] = f"fault:{name}"
        fault = getattr(a.params, "fault", None)
        if fault is not None:
            name, _ = resolve_fault_ref(fault, steps)
            if name is not None and name != fault:
                update[a.kind] = a.params.model_copy(update={"fault": name})
        assertions.append(a.model_copy(update=update) if update else a)
    return topo.model_copy(update={"assertions": assertions})


def _load_one(path: Path) -> tuple[Topology, dict[Loc, int], list[tuple[Loc, str]]]:
    """The file as a `Topology` (or a SpecError), its line map, and its cross-reference problems."""
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        got = "a list" if isinstance(data, list) else f"'{_one_line(str(data))[:40]}'"
        raise SpecError(
            [
                f"{path}:1: (top-level): a topology must be a mapping with 'name' and 'services', got {got} ({START_FROM})"
            ]
        )
    try:
        topo = Topology.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_problems(str(path), exc, data, lines)) from None
    return topo, lines, list(check_topology(topo, path.parent))
