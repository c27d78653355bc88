"""The topology file and a reusable chaos experiment, as a whole."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from harness.spec.compare import check_tolerance, parse_tolerance
from harness.spec.models.assertions import (
    Assertion,
)
from harness.spec.models.base import (
    FilePath,
    Image,
    Name,
    StrictModel,
)
from harness.spec.models.chaos import (
    ChaosStep,
)
from harness.spec.models.common import (
    Network,
)
from harness.spec.models.load import (
    Load,
)
from harness.spec.models.services import (
    Service,
)


class Link(StrictModel):
    """Put a proxy between two services: clients of `to` in `from` connect through it."""

    from_: str = Field(alias="from")
    to: str
    via: Literal["toxiproxy"] = "toxiproxy"
    image: Image | None = None  # e.g. a real Toxiproxy image; default: the harness's own proxy

    @property
    def name(self) -> str:
        return f"{self.from_}->{self.to}"


# A tolerance as written (`+20%`, `+0.005`, `+500ms`), checked by `parse_tolerance`.
Tolerance = Annotated[
    str,
    BeforeValidator(check_tolerance),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*\+\s*(\d+(\.\d+)?\s*%?|(\d+(\.\d+)?\s*(ms|s|m|h)\s*)+)\s*$",
            "description": "how much worse than the baseline: +10% (relative), +0.005 "
            "(absolute, in the figure's unit) or +500ms (absolute duration)",
        }
    ),
]


class Compare(StrictModel):
    """A regression gate against a previous run: each assertion's figure may be worse than the
    baseline's by at most its tolerance, looked up by assertion name, then kind, then `default`."""

    baseline: FilePath | None = None  # a run directory or its journal.json, relative to this file
    tolerance: dict[str, Tolerance] = Field(default_factory=lambda: {"default": "+10%"})

    def tolerance_for(self, kind: str, title: str | None = None) -> tuple[str, float]:
        """("relative" | "absolute", value) for an assertion; +10% when nothing matches."""
        for key in (title, kind, "default"):
            if key is not None and key in self.tolerance:
                return parse_tolerance(self.tolerance[key])
        return parse_tolerance("+10%")


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("literal_error", "Input should be 1")
    return value


Version = Annotated[Literal[1], BeforeValidator(_not_bool)]


def _allow_range(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=False))
    except ValueError:
        raise ValueError(
            f"'{value}' is not an IPv4 range (write e.g. 10.0.0.0/24, or 10.0.0.7/32 for one host)"
        ) from None


class ExternalPrometheus(StrictModel):
    """runtime: hosts: the user's own Prometheus, which scrapes the hosts' exporters; the run's
    Prometheus scrapes only the harness's and reads the user's series through remote_read."""

    url: str = Field(
        pattern=r"^https?://[^/\s]+(/\S*)?$",
        max_length=2048,
        description="e.g. http://10.0.0.5:9090: inside allow: (or loopback); read at "
        'URL/api/v1/read. It must scrape each host\'s exporter as instance="ADDR:PORT"; '
        "promql: assertions use its labels (no run=)",
    )
    instances: dict[str, str] = Field(
        default_factory=dict,
        description="the instance label it gives a host's exporter when not ADDR:PORT, by the "
        "host's instance name (e.g. lb-1: lb1.example:8405)",
    )


class Topology(StrictModel):
    version: Version = 1
    name: Name
    description: str = ""
    # docker: the harness builds and starts the stack; hosts: services name existing machines
    # (`hosts: [ssh://user@addr]`) and the harness only acts on them over SSH
    runtime: Literal["docker", "hosts"] = "docker"
    # runtime: hosts: the address ranges the harness may touch; any other host is refused
    allow: list[Annotated[str, AfterValidator(_allow_range)]] = Field(default_factory=list)
    prometheus: ExternalPrometheus | None = None  # runtime: hosts: the user's own Prometheus
    services: dict[Name, Service]
    links: list[Link] = Field(default_factory=list)
    network: Network = Field(default_factory=Network)
    load: Load = Field(default_factory=Load)
    seed: int = 0  # picks random targets and toxicity reproducibly
    chaos: list[ChaosStep] = Field(default_factory=list)
    experiments: list[FilePath] = Field(
        default_factory=list
    )  # files under chaos/, relative to this file
    assertions: list[Assertion] = Field(default_factory=list)
    compare: Compare | None = None  # a regression gate against a previous run


class Experiment(StrictModel):
    """A reusable chaos experiment (chaos/*.yaml): fault steps and the assertions they call for,
    referenced from a topology's `experiments:` and picked with `harness run --experiment NAME`."""

    version: Version = 1
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    description: str = ""
    chaos: list[ChaosStep] = Field(min_length=1)
    assertions: list[Assertion] = Field(default_factory=list)
