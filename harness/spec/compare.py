"""Tolerances of the regression gate (`compare:`): how much worse than the baseline run a figure
may get. `+20%` is relative to the baseline figure; `+0.005` is absolute, in the figure's own
unit; `+500ms`, `+2s` or `+1m30s` are absolute durations (seconds), for the kinds measured in
seconds. The `+` is required: a tolerance only ever allows a figure to get worse."""

from __future__ import annotations

import re

from harness.spec.durations import parse_duration

RELATIVE, ABSOLUTE = "relative", "absolute"
FORMS = "+10% relative to the baseline, +0.005 absolute, or a duration such as +500ms"
_NUMBER = re.compile(r"\d+(\.\d+)?")


def _show(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse(text: object) -> tuple[str, float, bool]:
    """(mode, value, written as a duration); ValueError with the accepted forms otherwise."""
    if isinstance(text, bool) or not isinstance(text, str):
        if isinstance(text, int | float) and not isinstance(text, bool):
            raise ValueError(
                f"{_show(text)} is a number, not a tolerance: YAML reads an unquoted "
                f"+{_show(text)} as one (quote it, '+{_show(text)}', or write a percentage "
                "such as '+10%')"
            )
        got = "nothing" if text is None else type(text).__name__
        raise ValueError(f"expected a tolerance, got {got} (write {FORMS})")
    s = text.replace(" ", "")
    if s.startswith("-"):
        raise ValueError(
            f"'{_show(text)}' is negative: a tolerance is how much worse than the baseline a "
            "figure may get (write e.g. +10%, or +0% for no regression at all)"
        )
    body = s.removeprefix("+")
    if body.endswith("%") and _NUMBER.fullmatch(body[:-1]):
        mode, value, duration = RELATIVE, float(body[:-1]) / 100, False
    elif _NUMBER.fullmatch(body):
        mode, value, duration = ABSOLUTE, float(body), False
    else:
        try:
            mode, value, duration = ABSOLUTE, parse_duration(body), True
        except ValueError:
            raise ValueError(f"'{_show(text)}' is not a tolerance (write {FORMS})") from None
    if not s.startswith("+"):
        raise ValueError(
            f"'{_show(text)}' has no '+': a tolerance is how much worse than the baseline a "
            f"figure may get (write '+{_show(s)}')"
        )
    return mode, value, duration


def parse_tolerance(text: str) -> tuple[str, float]:
    """`"+20%"` → `("relative", 0.2)`; `"+0.5"` and `"+500ms"` → `("absolute", 0.5)`.
    Raises ValueError, whose message ends with the accepted forms, for anything else."""
    mode, value, _ = _parse(text)
    return mode, value


def is_duration(text: str) -> bool:
    """Whether a valid tolerance is written as a duration (`+500ms`), i.e. only fits seconds."""
    return _parse(text)[2]


def check_tolerance(value: object) -> object:
    """A pydantic BeforeValidator: the value stays as written, once known to parse."""
    _parse(value)
    return value
