"""Pydantic's validation errors as one line per location, each with a fix."""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args

from pydantic import ValidationError

from harness.spec import models
from harness.spec.models import Service, UnknownKey
from harness.spec.render import HAS_FIX, Loc, render


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
        text = "; ".join(msgs) if any(HAS_FIX.search(m) for m in msgs) else " or ".join(msgs)
        text += f", got {gots[0]}" if gots else ""
        problems.append((loc, text + (f" ({fix})" if fix else "")))
    return render(file, problems, lines)
