"""YAML → `Topology`, with every problem reported as `file:line: field: problem (fix)`.

The YAML is composed (not just loaded) so that each key path keeps the line it came from;
pydantic error locations and our own cross-reference checks are mapped back to those lines.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from harness.errors import SpecError
from harness.spec.models import Topology

Loc = tuple[Any, ...]


def _construct(node: yaml.Node, path: Loc, lines: dict[Loc, int], scalars: yaml.SafeLoader) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = scalars.construct_object(key_node, deep=True)
            if key == "<<":
                raise yaml.YAMLError("merge keys (<<) are not supported")
            if key in out:
                raise _DuplicateKey(str(key), key_node.start_mark.line + 1)
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, path + (key,), lines, scalars)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), lines, scalars) for i, item in enumerate(node.value)]
    return scalars.construct_object(node, deep=True)


class _DuplicateKey(Exception):
    def __init__(self, key: str, line: int) -> None:
        self.key, self.line = key, line


def read_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return the data and a map from key path to line number."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError([f"{path}: file not found (check the path)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([f"{path}: cannot read: {exc}"]) from None
    lines: dict[Loc, int] = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            raise SpecError([f"{path}:1: the file is empty (start from topologies/ha.yaml)"])
        data = _construct(node, (), lines, yaml.SafeLoader(""))
    except _DuplicateKey as dup:
        raise SpecError([f"{path}:{dup.line}: {dup.key}: duplicate key (keep one)"]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise SpecError([f"{path}:{line}: invalid YAML: {exc.problem or exc} (fix the syntax)"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{path}:1: invalid YAML: {exc}"]) from None
    return data, lines


def line_for(lines: dict[Loc, int], loc: Loc) -> int:
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc, 1)


def _field_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _clean_loc(loc: Loc, data: Any) -> Loc:
    """Keep the parts of a pydantic location that are keys in the YAML (drop union tags such as
    'haproxy'); the last part is kept even if absent, since it names a missing or unknown field."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif i == len(loc) - 1:
            out.append(part)
    return tuple(out)


_FIXES = {
    "missing": "add it",
    "literal_error": "use one of the allowed values",
    "union_tag_invalid": "use one of the built-in kinds",
    "union_tag_not_found": "add a 'kind:' key",
    "string_pattern_mismatch": "use lowercase letters, digits and '-'",
}


def validation_problems(file: str, exc: ValidationError, data: Any, lines: dict[Loc, int]) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        ctx = err.get("ctx") or {}
        raw = tuple(err["loc"]) + ((ctx["key"],) if err["type"] == "unknown_key" else ())
        loc = _clean_loc(raw, data)
        msg = err["msg"].removeprefix("Value error, ")
        fix = _FIXES.get(err["type"])
        if err["type"] == "union_tag_invalid":
            loc = loc + ("kind",)
            kinds = [k.strip(" '") for k in str(ctx.get("expected_tags", "")).split(",")]
            close = difflib.get_close_matches(str(ctx.get("tag")), kinds, n=1)
            msg = f"unknown kind '{ctx.get('tag')}'"
            fix = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(kinds)}"
        if err["type"] == "string_pattern_mismatch" and "\\d" in str(ctx.get("pattern", "")):
            fix = "write e.g. 512m or 1g"
        problems.append(f"{file}:{line_for(lines, loc)}: {_field_path(loc)}: {msg}" + (f" ({fix})" if fix else ""))
    return problems


def load_topology(path: str | Path) -> Topology:
    """Read, validate and cross-check a topology file; raise one `SpecError` listing every problem."""
    from harness.spec.semantic import check_topology

    path = Path(path)
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError([f"{path}:1: a topology must be a mapping with 'name' and 'services'"])
    try:
        topo = Topology.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_problems(str(path), exc, data, lines)) from None
    problems = [f"{path}:{line_for(lines, loc)}: {_field_path(loc)}: {msg}" for loc, msg in check_topology(topo)]
    if problems:
        raise SpecError(problems)
    return topo
