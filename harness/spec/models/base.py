"""The ground every model stands on: `StrictModel` (unknown keys with a did-you-mean hint,
no coercion) and the constrained scalar types (durations, paths, URL paths, images)."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)

from harness.spec.durations import between, parse_duration, schema_between
from harness.spec.files import path_problem

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]


def bounded(low: float, high: float | None = None, whole: bool = False, why: str = "") -> Any:
    """Metadata for a bounded duration field: `Annotated[float, *bounded(...)]`."""
    hi = high if high is not None else 7 * 86400.0
    return (
        BeforeValidator(parse_duration),
        AfterValidator(between(low, hi, whole=whole, why=why)),
        WithJsonSchema(schema_between(low, hi, whole)),
    )


# Durations rendered into configs in milliseconds: 0 would read as "none" or "infinite".
Millis = Annotated[float, *bounded(0.001, why="it is written to the config in milliseconds")]
CheckInterval = Annotated[float, *bounded(0.01, 3600, why="a check every 0ms is no check")]
VrrpSeconds = Annotated[
    float, *bounded(1, 255, whole=True, why="VRRPv2 advertises whole seconds from 1 to 255")
]
WholeSeconds = Annotated[
    float, *bounded(1, 86400, whole=True, why="the config takes whole seconds")
]
ScrapeInterval = Annotated[float, *bounded(0.1, 300)]
FailTimeout = Annotated[float, *bounded(1, 86400, why="nginx counts fail_timeout in seconds")]
Positive = Annotated[float, *bounded(0.001, why="0 is no time at all")]
LoadSeconds = Annotated[float, *bounded(1, why="Locust runs for whole seconds, at least 1")]
WaitSeconds = Annotated[float, *bounded(1, 3600)]


class UnknownKey:
    """What an unknown key's value becomes before validation: pydantic then reports it as
    `extra_forbidden` beside every other problem of the same model (not instead of them), and
    the loader finds the did-you-mean hint here."""

    __slots__ = ("hint", "key", "value")

    def __init__(self, key: str, hint: str, value: Any) -> None:
        self.key, self.hint, self.value = key, hint, value

    def __repr__(self) -> str:
        return f"UnknownKey({self.key!r})"


class StrictModel(BaseModel):
    # allow_inf_nan=False: `.inf`/`.nan` are valid YAML floats but never a meaningful setting here.
    # strict: integers are integers and booleans booleans, as the JSON Schema says.
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=False, allow_inf_nan=False, strict=True
    )

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        # In a file, a field is written as the schema spells it (`for`, `from`); Python code
        # may also use the attribute name (`for_`).
        in_file = bool(info.context and info.context.get("file"))
        known = {f.alias or n for n, f in cls.model_fields.items()}
        if not in_file:
            known |= set(cls.model_fields)
        unknown = [key for key in data if key not in known]
        if not unknown:
            return data
        out = dict(data)
        for key in unknown:
            if key in cls.model_fields:  # `for_` in a file: hide it from populate_by_name
                del out[key]
                key_out = f"{key}\x00"
            else:
                key_out = key
            close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else f"known keys: {', '.join(sorted(known))}"
            )
            out[key_out] = UnknownKey(str(key), hint, data[key])
        return out


def no_control(value: str, what: str = "it") -> str:
    bad = next((c for c in value if not c.isprintable()), None)
    if bad is not None:
        raise ValueError(
            f"{what} contains the control character {bad!r} (remove it: this text ends up in a "
            "config or a query)"
        )
    return value


def file_path(value: str) -> str:
    problem = path_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# A file or directory named in the topology, relative to the topology file.
FilePath = Annotated[str, AfterValidator(file_path)]

# URL paths HAProxy and the harness send as is: RFC 3986 characters, nothing the HAProxy config
# parser treats specially (space, #, quotes, backslash, $), no control character.
URL_PATH = r"/[A-Za-z0-9._~%!*+,;=:@/-]*(\?[A-Za-z0-9._~%!*+,;=:@/?&-]*)?"


def _url_path(value: str) -> str:
    if not re.fullmatch(URL_PATH, value, re.ASCII):
        shown = value if len(value) <= 40 else value[:37] + "..."
        bad = next((c for c in value if not re.fullmatch(r"[A-Za-z0-9._~%!*+,;=:@/?&-]", c)), None)
        why = (
            f"{bad!r} cannot appear in it unescaped" if bad is not None else "it must start with /"
        )
        raise ValueError(
            f"'{one_line(shown)}' is not a URL path: {why} (write e.g. /health; "
            "percent-encode anything else, e.g. %20 for a space)"
        )
    if re.search(r"%(?![0-9A-Fa-f]{2})", value):
        raise ValueError("a % must start a percent-encoding such as %20 (write %25 for a %)")
    return value


def one_line(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


UrlPath = Annotated[
    str,
    Field(max_length=1024),
    AfterValidator(_url_path),
    WithJsonSchema({"type": "string", "pattern": "^" + URL_PATH + "$", "maxLength": 1024}),
]

# A Docker image reference (docker/distribution's grammar): [registry[:port]/]name[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
IMAGE_PATTERN = (
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
Image = Annotated[str, Field(pattern=IMAGE_PATTERN, max_length=255)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=255)]
EnvValue = Annotated[str, AfterValidator(lambda v: no_nul(v))]


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL byte, which no process can receive (remove it)")
    return value


Port = Annotated[int, Field(ge=1, le=65535)]
