"""YAML → plain Python values and the line of every key path, bounded and never a traceback.

The YAML is composed (not just loaded) so that each key path keeps the line it came from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from harness.errors import SpecError
from harness.spec.files import MAX_TOPOLOGY_BYTES, FileProblem, read_bounded
from harness.spec.render import Loc, field_path, one_line

MAX_VALUES = 100_000  # aliases can expand a small file exponentially ("billion laughs")


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
        raise SpecError([one_line(f"{path}:1: (file): {exc.message}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SpecError(
            [one_line(f"{path}:{line}: (file): not UTF-8 text: {exc.reason} (save it as UTF-8)")]
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
                one_line(
                    f"{path}:{at(bad.line)}: "
                    f"{'(yaml)' if bad.path is None else field_path(bad.path)}: {bad.message}"
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
                    one_line(
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
            [one_line(f"{path}:{at(line)}: (yaml): invalid YAML: {problem} ({fix})")]
        ) from None
    except yaml.reader.ReaderError as exc:  # a control character: the reader knows its offset only
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise SpecError(
            [
                one_line(
                    f"{path}:{at(line)}: (yaml): invalid YAML: {exc.reason} (remove the control character)"
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(
            [one_line(f"{path}:1: (yaml): invalid YAML: {exc} (fix the syntax)")]
        ) from None
    except RecursionError:
        raise SpecError([f"{path}:1: (yaml): the file is nested too deeply (flatten it)"]) from None
    builder.lines = {k: at(v) for k, v in builder.lines.items()}
    return data, builder.lines
