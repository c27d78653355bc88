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
from harness.spec import models
from harness.spec.files import MAX_TOPOLOGY_BYTES, FileProblem, probe, read_bounded
from harness.spec.models import Experiment, Service, Topology, UnknownKey
from harness.spec.semantic import (
    check_merged,
    check_plan,
    check_topology,
    resolve_fault_ref,
    resolve_locustfile,
    warn_topology,
)

Loc = tuple[Any, ...]

MAX_VALUES = 100_000  # aliases can expand a small file exponentially ("billion laughs")
FILE = {
    "file": True
}  # validation context: the data comes from a file, keys as the schema spells them
MAX_DEPTH = 64  # a topology nests 6 levels deep; the YAML composer recurses once per level
START_FROM = "start from topologies/ha.yaml"
_INT_FIX = f"use at most {2**63 - 1}"


class _BadYaml(Exception):
    """A problem found while building Python values from the YAML nodes: it has a line and a path."""

    def __init__(self, line: int, path: Loc | None, message: str) -> None:
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


class _Loader(yaml.SafeLoader):
    """The safe loader's composer, bounded: at most MAX_DEPTH levels (before Python's recursion
    limit) and MAX_VALUES nodes, each reported at the line where it is exceeded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        line = self.peek_event().start_mark.line + 1
        self.depth += 1
        self.nodes += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _BadYaml(
                    line, None, f"the file nests deeper than {MAX_DEPTH} levels (flatten it)"
                )
            if self.nodes > MAX_VALUES:
                raise _BadYaml(
                    line, None, f"the file has more than {MAX_VALUES} values (split or shorten it)"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_LOOKS_LIKE_KEY = re.compile(r"\n[ \t]*-?[ \t]*[A-Za-z_][\w-]*:(\s|$)")


def _unclosed_quote(text: str) -> tuple[int, int] | None:
    """(line where it opens, line where YAML found its end) of a quoted value that swallowed
    the lines after it (`name: "ha` with the closing quote forgotten), or None."""
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if (
                isinstance(token, yaml.ScalarToken)
                and getattr(token, "style", None) in ('"', "'")
                and token.end_mark.line > token.start_mark.line
                and _LOOKS_LIKE_KEY.search(text, token.start_mark.index, token.end_mark.index)
            ):
                return token.start_mark.line + 1, token.end_mark.line + 1
    except yaml.MarkedYAMLError as exc:
        if "quoted scalar" in (exc.context or "") and exc.context_mark is not None:
            return exc.context_mark.line + 1, (exc.problem_mark or exc.context_mark).line + 1
    except (yaml.YAMLError, RecursionError):
        return None
    return None


def read_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return the data and a map from key path to line number. The file is
    read through a bounded reader: a FIFO, a device or more than MAX_TOPOLOGY_BYTES is refused
    before it is read."""
    try:
        raw = read_bounded(
            path,
            MAX_TOPOLOGY_BYTES,
            "topology file",
            "a topology is a few KB: move chaos steps to experiments:, or remove what is not needed",
        )
    except FileProblem as exc:
        raise SpecError([_one_line(f"{path}:1: (file): {exc.message}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError(
            [_one_line(f"{path}:{line}: (file): not UTF-8 text: {exc.reason} (save it as UTF-8)")]
        ) from None
    last = max(1, len(text.splitlines()))

    def at(line: int) -> int:  # a mark can sit just past the end (e.g. an unclosed bracket)
        return min(max(line, 1), last)

    builder = _Builder(text)
    try:
        node = yaml.compose(text, Loader=_Loader)
        if node is None:
            raise SpecError([f"{path}:1: (file): the file is empty ({START_FROM})"])
        data = builder.build(node, ())
    except _BadYaml as bad:
        raise SpecError(
            [
                _one_line(
                    f"{path}:{at(bad.line)}: "
                    f"{'(yaml)' if bad.path is None else _field_path(bad.path)}: {bad.message}"
                )
            ]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or str(exc)
        fix = "indent with spaces, not tabs" if "'\\t'" in problem else "fix the syntax"
        quote = _unclosed_quote(text)
        if quote is not None and quote[0] <= line:
            opens, ends = quote
            runs = f"runs on to line {ends}" if ends > opens else "is never closed"
            raise SpecError(
                [
                    _one_line(
                        f"{path}:{at(opens)}: (yaml): invalid YAML: the quoted value that opens on "
                        f"this line {runs}, swallowing the lines between; YAML then found: "
                        f"{problem} at line {at(line)} (close the quote on this line)"
                    )
                ]
            ) from None
        if exc.context and exc.context_mark is not None and exc.context_mark.line + 1 < line:
            opened = exc.context_mark.line + 1
            problem += f", {exc.context} opened at line {at(opened)}"
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
    r"^[a-z][a-z0-9-]{0,40}$": "use lowercase letters, digits and '-', starting with a letter",
    r"^(steady|recovery|calm|run|fault:.+)$": "write run, steady, recovery, calm or fault:<chaos step name>",
    r"^[0-9]{1,15}[kmg]?$": "write e.g. 512m or 1g",
    models.IMAGE_PATTERN: "write an image reference such as debian:bookworm-slim or registry:5000/team/app:1.2",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "use letters, digits and _, not starting with a digit",
    r"^[A-Za-z0-9._+-]{1,15}$": "write a process name as ps shows it, e.g. php-fpm8.2 (at most 15 characters)",
    models.HTTP_CHECK_PATTERN: "write a path such as /health, or :8080/health for another port",
    r"^/[^\x00-\x1f]*$": "write an absolute path inside the container, e.g. /run/ready",
    r"^[^\x00-\x1f]*$": "remove the control characters",
    r'^[^"\\\x00-\x1f]{1,200}$': "write the request name as Locust reports it, e.g. /whoami, without quotes or backslashes",
    r"\S": 'write a PromQL expression, e.g. up{run="$run"}',
    r"^https?://[^/\s]+(/\S*)?$": "write e.g. http://lb or http://10.213.7.200:8080/app",
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
    "tuple_type": "write a list of two numbers, e.g. [0, 1]",
    "bytes_type": "write text",
    "recursion_loop": "flatten it",
    "extra_forbidden": "remove it",
}

_FALLBACK_FIX = "see `harness schema` for what is allowed here"
# Type errors the strict models raise where a lax parser would have coerced (`"3"`, `true`).
_STRICT_TYPES = ("int_type", "float_type", "bool_type", "string_type")


def _got(value: Any) -> str:
    """What YAML made of the value, in words: the text '3', the boolean true, the number 3.5."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 30 else value[:27] + "..."
        return f"the text '{shown}'"
    if isinstance(value, bytes):
        return "binary data (!!binary)"
    if value is None:
        return "nothing (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_HAS_FIX = re.compile(r" \(.*\)$", re.DOTALL)

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
        limit = ctx.get(key)
        return f"use {words} {limit:g}" if isinstance(limit, float) else f"use {words} {limit}"
    if err["type"] == "string_pattern_mismatch":
        return _PATTERN_FIXES.get(str(ctx.get("pattern")), "see topologies/ha.yaml for the format")
    given = err.get("input")
    if err["type"] in ("int_type", "float_type") and isinstance(given, str):
        try:
            float(given.strip())
            return f"write {given.strip()} without quotes"
        except ValueError:
            pass
    if err["type"] == "too_short":
        n = ctx.get("min_length", 1)
        return f"add at least {n} item{'s' if n != 1 else ''}"
    if err["type"] == "too_long":
        return f"keep at most {ctx.get('max_length')} items"
    if err["type"] == "string_too_short":
        return (
            "write something"
            if ctx.get("min_length") == 1
            else f"write at least {ctx.get('min_length')} characters"
        )
    if err["type"] == "string_too_long":
        return f"use at most {ctx.get('max_length')} characters"
    return _FIXES.get(err["type"])


def validation_problems(
    file: str, exc: ValidationError, data: Any, lines: dict[Loc, int]
) -> list[str]:
    # One line per location: the branches of a union (`str | TargetSpec`) merge into one message.
    # loc -> [(message, fix, is a type mismatch, what was given)]
    merged: dict[Loc, list[tuple[str, str | None, bool, str | None]]] = {}
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        raw = tuple(err["loc"]) + ((ctx["key"],) if err["type"] == "unknown_key" else ())
        loc = _clean_loc(
            raw, data, keep_last=err["type"] in ("missing", "unknown_key", "extra_forbidden")
        )
        msg = _NOISE.sub("", err["msg"].removeprefix("Value error, "))
        got = _got(err["input"]) if err["type"] in _STRICT_TYPES and "input" in err else None
        fix = _fix(err)
        if err["type"] in ("unknown_key", "value_error") or msg.endswith(")"):
            fix = None  # our own messages carry their fix already
        if err["type"] == "extra_forbidden":
            given = err.get("input")
            key = given.key if isinstance(given, UnknownKey) else str(loc[-1] if loc else "?")
            if isinstance(given, UnknownKey) and loc and loc[-1] != key:
                loc = _clean_loc(tuple(err["loc"][:-1]) + (key,), data, keep_last=True)
            msg = f"unknown key '{key}'"
            fix = given.hint if isinstance(given, UnknownKey) else "remove it"
        if raw and raw[-1] == "[key]":
            msg = f"'{loc[-1] if loc else err.get('input')}' is not a valid name"
            fix = _fix(err) if err["type"] == "string_pattern_mismatch" else _NAME_FIX
        if err["type"] == "invalid_key" or (
            raw and raw[-1] == "[key]" and err["type"] == "string_type"
        ):
            msg, got = f"a key must be text, got {_got(err.get('input'))}", None
            fix = "write a name; quote it if it looks like a number, null or a boolean, e.g. '5'"
        if err["type"] == "literal_error" and isinstance(err.get("input"), bool):
            got = _got(err["input"])
            fix = (
                f"quote it, e.g. '{'off' if err['input'] is False else 'on'}': YAML reads a bare "
                "off, on, yes or no as a boolean"
            )
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
        mismatch = err["type"].endswith("_type") or err["type"] == "model_attributes_type"
        entries = merged.setdefault(loc, [])
        if all(e[0] != msg for e in entries):
            entries.append((msg, fix, mismatch, got))
    problems = []
    for loc, entries in merged.items():
        # `str | dict` given a bad string: the string's own problem, not "or a valid dictionary"
        if any(not e[2] for e in entries):
            entries = [e for e in entries if not e[2]]
        msgs = [e[0] for e in entries]
        if len(msgs) > 1:  # e.g. "Input should be a valid string" + "Input should be a valid list"
            msgs = [msgs[0]] + [m.removeprefix("Input should be ") for m in msgs[1:]]
        gots = [e[3] for e in entries if e[3] is not None]
        fix = entries[0][1]
        text = "; ".join(msgs) if any(_HAS_FIX.search(m) for m in msgs) else " or ".join(msgs)
        text += f", got {gots[0]}" if gots else ""
        problems.append((loc, text + (f" ({fix})" if fix else "")))
    return _render(file, problems, lines)


def _render(
    file: str, problems: Iterable[tuple[Loc, str]], lines: dict[Loc, int], prefix: str = ""
) -> list[str]:
    """`file:line: field: problem (fix)`, one line each, in file order; every line has a fix
    part (a message that somehow has none gets a pointer to the schema rather than nothing)."""
    located = [(line_for(lines, loc), _field_path(loc), msg) for loc, msg in problems]
    return [
        _one_line(
            f"{file}:{line}: {field}: {prefix}{msg}"
            + ("" if _HAS_FIX.search(msg) else f" ({_FALLBACK_FIX})")
        )
        for line, field, msg in sorted(located, key=lambda p: p[0])
    ]


def load_topology(
    path: str | Path,
    experiments: list[str] | None = None,
    *,
    require_assertions: bool = True,
    warnings: list[str] | None = None,
    allow_external_target: bool = False,
) -> Topology:
    """Read, validate and cross-check a topology file and the experiments it references; raise
    one `SpecError` listing every problem. `experiments` picks experiments by name (default: all
    listed); their steps and assertions join the topology's own. The topology as it will run
    (merged and picked) is checked last: it needs an assertion, and no step may hit a container
    an earlier step removed. Then the run's plan is built once (user templates rendered), so a
    topology accepted here is one the plan can be built from. References to a repeated step's
    later injections (`NAME#2`) come back as the schedule names them (`NAME #2`), and
    `load.locustfile` as the absolute path it was found at. `require_assertions=False` is for
    `harness up`, which judges nothing; `warnings` (if given) receives the warning lines, each
    `file:line: field: warning: problem (fix)`; `allow_external_target` lets load.url leave the
    run's network (harness run --allow-external-target)."""
    path = Path(path)
    topo, lines, found = _load_one(path, allow_external_target)
    if not topo.experiments:
        if experiments:
            raise SpecError(
                _render(str(path), found, lines)
                + [
                    _one_line(
                        f"{path}:1: experiments: none declared, cannot pick {', '.join(experiments)} "
                        "(add experiments: [chaos/<file>.yaml])"
                    )
                ]
            )
        merged = check_merged(topo, require_assertions=require_assertions)
        problems = _render(str(path), [*found, *merged], lines)
        if problems:
            raise SpecError(problems)
        _check_plan(path, topo, lines)
        if warnings is not None:
            found_warnings = list(warn_topology(topo, path.parent))
            warnings += _render(str(path), found_warnings, lines, "warning: ")
        return _resolved(path, canonical_references(topo))
    if found:
        raise SpecError(_render(str(path), found, lines))
    return _resolved(
        path, _with_experiments(path, topo, lines, experiments, require_assertions, warnings)
    )


def _check_plan(path: Path, topo: Topology, lines: dict[Loc, int]) -> None:
    problems = _render(str(path), check_plan(topo, path.parent), lines)
    if problems:
        raise SpecError(problems)


def _resolved(path: Path, topo: Topology) -> Topology:
    """`load.locustfile` as the absolute path validation found it at, so the run does not
    depend on the working directory."""
    found = resolve_locustfile(path.parent, topo.load.locustfile)
    if found is None:  # checked already; keep the spec as written rather than fail here
        return topo
    load = topo.load.model_copy(update={"locustfile": str(found)})
    return topo.model_copy(update={"load": load})


# Where an item of the merged topology came from: (file, its line map, its index in that file).
_Source = tuple[str, dict[Loc, int], int]


def _with_experiments(
    path: Path,
    topo: Topology,
    lines: dict[Loc, int],
    pick: list[str] | None,
    require_assertions: bool = True,
    warnings: list[str] | None = None,
) -> Topology:
    problems: list[str] = []
    loaded: list[tuple[Experiment, str, dict[Loc, int]]] = []
    for i, rel in enumerate(topo.experiments):
        file = path.parent / rel
        try:
            kind = probe(file)
        except FileProblem as exc:
            problems.append(
                _one_line(
                    f"{path}:{line_for(lines, ('experiments', i))}: experiments[{i}]: {exc.message}"
                )
            )
            continue
        if kind != "file":
            what = f"no file {file}" if kind == "missing" else f"{file} is {kind}, not a file"
            problems.append(
                _one_line(
                    f"{path}:{line_for(lines, ('experiments', i))}: experiments[{i}]: {what} "
                    "(paths are relative to the topology file)"
                )
            )
            continue
        try:
            data, exp_lines = read_yaml(file)
            exp = Experiment.model_validate(data, context=FILE)
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
    _check_plan(path, merged, lines)
    if warnings is not None:
        found = list(warn_topology(merged, path.parent))
        warnings += _render_merged(own, lines, sources, found, "warning: ")
    return canonical_references(merged)


def _render_merged(
    own: str,
    lines: dict[Loc, int],
    sources: dict[str, list[_Source]],
    found: Iterable[tuple[Loc, str]],
    prefix: str = "",
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
        out += _render(file, problems, file_lines, prefix)
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


def _load_one(
    path: Path, allow_external_target: bool = False
) -> tuple[Topology, dict[Loc, int], list[tuple[Loc, str]]]:
    """The file as a `Topology` (or a SpecError), its line map, and its cross-reference problems."""
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        got = "a list" if isinstance(data, list) else f"'{_one_line(str(data))[:40]}'"
        raise SpecError(
            [
                _one_line(
                    f"{path}:1: (top-level): a topology must be a mapping with 'name' and "
                    f"'services', got {got} ({START_FROM})"
                )
            ]
        )
    try:
        topo = Topology.model_validate(data, context=FILE)
    except ValidationError as exc:
        raise SpecError(validation_problems(str(path), exc, data, lines)) from None
    return topo, lines, list(check_topology(topo, path.parent, allow_external_target))
