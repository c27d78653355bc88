"""A problem as the user reads it: `file:line: field: problem (fix)`, one line each."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

Loc = tuple[Any, ...]


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


def field_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = _part(part)
            out += text if not out or text.startswith("[") else f".{text}"
    return out or "(top-level)"


def one_line(problem: str) -> str:
    """A problem is one line: line breaks and other control characters from the input are escaped."""
    return "".join(c if c.isprintable() or c == " " else _escape(c) for c in problem)


HAS_FIX = re.compile(r" \(.*\)$", re.DOTALL)


_FALLBACK_FIX = "see `harness schema` for what is allowed here"


def render(
    file: str, problems: Iterable[tuple[Loc, str]], lines: dict[Loc, int], prefix: str = ""
) -> list[str]:
    """`file:line: field: problem (fix)`, one line each, in file order; every line has a fix
    part (a message that somehow has none gets a pointer to the schema rather than nothing)."""
    located = [(line_for(lines, loc), field_path(loc), msg) for loc, msg in problems]
    return [
        one_line(
            f"{file}:{line}: {field}: {prefix}{msg}"
            + ("" if HAS_FIX.search(msg) else f" ({_FALLBACK_FIX})")
        )
        for line, field, msg in sorted(located, key=lambda p: p[0])
    ]
