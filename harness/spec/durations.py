"""Durations as users write them (`500ms`, `2s`, `1m`, `1m30s`) parsed to float seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_SECONDS = (
    7 * 86400.0
)  # a week: anything longer is a typo, and inf/nan would poison the schedule


def _show(value: object) -> str:
    try:
        text = str(value)
    except ValueError:  # an int beyond Python's 4300-digit str() limit
        return "<a huge number>"
    return text if len(text) <= 40 else text[:37] + "..."


def parse_duration(value: object) -> float:
    """Every message carries its fix in parentheses; the result is always finite and in 0..168h."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        got = "nothing" if value is None else type(value).__name__
        raise ValueError(f"expected a duration, got {got} (write e.g. 500ms, 2s or 1m)")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value} is not a duration (write e.g. 500ms, 2s or 1m)")
        if value < 0:
            raise ValueError(f"{_show(value)} is negative (a duration must be 0 or more, e.g. 1s)")
        if value > MAX_SECONDS:
            raise ValueError(
                f"{_show(value)} seconds is too long (at most {MAX_SECONDS / 3600:g}h)"
            )
        return float(value)
    text = value.strip().replace(" ", "")
    if text.startswith("-"):
        raise ValueError(f"'{_show(value)}' is negative (a duration must be 0 or more, e.g. 1s)")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(
            f"'{_show(value)}' is not a duration (write e.g. 500ms, 2s, 1m or 1m30s; units: ms, s, m, h)"
        )
    if total > MAX_SECONDS:
        raise ValueError(f"'{_show(value)}' is too long (at most {MAX_SECONDS / 3600:g}h)")
    return total


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:g}s"


# What `parse_duration` accepts, for the JSON Schema (`harness schema`): seconds, or text like 1m30s.
JSON_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": MAX_SECONDS},
        {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h)\s*)+$"},
    ],
    "description": "a duration: seconds, or e.g. 500ms, 2s, 1m, 1m30s",
}

Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(JSON_SCHEMA)]
