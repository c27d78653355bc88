"""Durations as users write them (`500ms`, `2s`, `1m`, `1m30s`) parsed to float seconds."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

# The JSON Schema's pattern, so that the validator and the schema accept exactly the same text.
PATTERN = r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h)\s*)+$"
_WHOLE = re.compile(PATTERN.removesuffix("$") + r"\Z", re.ASCII)
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)", re.ASCII)
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
    if value.strip().startswith("-"):
        raise ValueError(f"'{_show(value)}' is negative (a duration must be 0 or more, e.g. 1s)")
    if _WHOLE.fullmatch(value) is None:
        raise ValueError(
            f"'{_show(value)}' is not a duration (write e.g. 500ms, 2s, 1m or 1m30s; units: ms, s, m, h)"
        )
    total = sum(float(n) * _UNITS[u] for n, u in _PART.findall(value))
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
        {"type": "string", "pattern": PATTERN},
    ],
    "description": "a duration: seconds, or e.g. 500ms, 2s, 1m, 1m30s",
}

Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(JSON_SCHEMA)]


def show(seconds: float) -> str:
    """A duration as the user would write it: 500ms, 2s, 1m30s."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds >= 60 and seconds == int(seconds):
        h, rest = divmod(int(seconds), 3600)
        m, sec = divmod(rest, 60)
        return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec else "")
    return f"{seconds:g}s"


def between(
    low: float, high: float = MAX_SECONDS, *, whole: bool = False, why: str = ""
) -> Callable[[float], float]:
    """An AfterValidator: the duration lies in [low, high] (whole seconds if `whole`); `why`
    says what a value outside would do, e.g. "HAProxy reads 0 as no check"."""
    reason = f": {why}" if why else ""

    def check(value: float) -> float:
        if whole and value != int(value):
            near = max(low, min(high, float(round(value)) or 1.0))
            raise ValueError(
                f"{show(value)} is not a whole number of seconds{reason} (write e.g. {show(near)})"
            )
        if value < low:
            raise ValueError(f"{show(value)} is too short{reason} (use at least {show(low)})")
        if value > high:
            raise ValueError(f"{show(value)} is too long{reason} (use at most {show(high)})")
        return value

    return check


def schema_between(low: float, high: float = MAX_SECONDS, whole: bool = False) -> dict[str, object]:
    """The JSON Schema of a bounded duration: numbers are bounded, text keeps the pattern."""
    number: dict[str, object] = {"type": "number", "minimum": low, "maximum": high}
    if whole:
        number["multipleOf"] = 1
    return {
        "anyOf": [
            number,
            {"type": "string", "pattern": PATTERN},
        ],
        "description": JSON_SCHEMA["description"],
    }
