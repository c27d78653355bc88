"""The load: Locust's locustfile, users, stages, user classes and workers."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    model_validator,
)

from harness.spec.models.base import (
    LoadSeconds,
    Port,
    Positive,
    StrictModel,
    file_path,
)


def _locustfile(value: str) -> str:
    if "," in value:
        raise ValueError(
            "Locust reads a comma as a separator between locustfiles (rename the file or "
            "directory without the comma)"
        )
    return value


LocustfilePath = Annotated[str, AfterValidator(file_path), AfterValidator(_locustfile)]
# A class name in the locustfile; passed to Locust on its command line.
PyIdentifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200)]


class Stage(StrictModel):
    """Hold `users` for `duration` (reached at `spawn_rate` per second): ramps and plateaus."""

    duration: Positive
    users: int = Field(ge=0, le=10000)
    spawn_rate: float | None = Field(default=None, gt=0, le=10000)


class UserMix(StrictModel):
    weight: int = Field(default=1, ge=0, le=1000)


def _ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(
            f"'{value}' is not an IPv4 address (write one of this machine's addresses, e.g. "
            "10.0.0.5, or 0.0.0.0 for every interface)"
        ) from None
    return value


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"'{value}' is not HOST:PORT (write e.g. 10.0.0.7:9646)")
    return value


class LoadMaster(StrictModel):
    """Where the Locust master listens for workers. The default (127.0.0.1) admits only the
    harness's own local worker processes; an address other machines reach lets
    `harness worker --master ADDR:PORT` join from there."""

    bind: Annotated[str, AfterValidator(_ipv4)] = "127.0.0.1"
    port: Port | None = None  # default: a free port (fixed ports suit remote workers)
    # metrics addresses (HOST:PORT) of the workers started elsewhere with `harness worker
    # --metrics HOST:PORT`: the run's Prometheus scrapes them, and the master waits for them
    remote_workers: list[Annotated[str, AfterValidator(_host_port)]] = Field(
        default_factory=list, max_length=64
    )


class Load(StrictModel):
    # relative to the topology file (else to the harness's own directory, where the built-in
    # locustfiles/ live); the loader replaces it with the absolute path it found
    locustfile: LocustfilePath = "locustfiles/session_user.py"
    users: int = Field(default=20, ge=1, le=10000)
    spawn_rate: float = Field(default=10, gt=0, le=10000)
    duration: LoadSeconds = 60.0
    target: str | None = None  # a service name; default: the first load balancer (its VIP if any)
    url: str | None = Field(
        default=None, pattern=r"^https?://[^/\s]+(/\S*)?$", max_length=2048
    )  # instead of target
    stages: list[Stage] = Field(default_factory=list)  # a LoadTestShape; the load lasts their sum
    user_classes: dict[PyIdentifier, UserMix] = Field(
        default_factory=dict
    )  # class name in the locustfile -> weight
    rate: float | None = Field(
        default=None, gt=0
    )  # fixed arrival rate per user (req/s): constant_throughput
    workers: int = Field(default=0, ge=0, le=64)  # > 0: Locust master + this many worker processes
    master: LoadMaster = Field(default_factory=LoadMaster)
    # the fewest workers (local + remote) that must stay connected for the run to count; a run
    # whose workers dropped below it is inconclusive (default: every worker)
    min_workers: int | None = Field(default=None, ge=0, le=128)

    @model_validator(mode="after")
    def _stages_set_duration(self) -> Load:
        if self.stages:
            given = [k for k in ("duration", "users", "spawn_rate") if k in self.model_fields_set]
            if given:
                raise ValueError(
                    f"with stages:, the load's {' and '.join(given)} come from the stages, so "
                    f"this would be ignored (remove {', '.join(given)}: the load lasts the "
                    "stages' sum and each stage sets its users and spawn_rate)"
                )
            if all(s.users == 0 for s in self.stages):
                raise ValueError(
                    "every stage has users: 0, so no load would run (give a stage users: 1 or more)"
                )
            self.duration = sum(s.duration for s in self.stages)
            if self.duration < 1:
                raise ValueError(
                    f"the stages last {self.duration:g}s in all; Locust runs for at least 1s "
                    "(lengthen a stage)"
                )
            self.users = max(s.users for s in self.stages)
        if self.user_classes and all(m.weight == 0 for m in self.user_classes.values()):
            raise ValueError(
                "every user class has weight: 0, so Locust would start no user (give one weight: 1 or more)"
            )
        return self

    @property
    def total_workers(self) -> int:
        """Worker processes in all: the harness's local ones plus those joining from elsewhere."""
        return self.workers + len(self.master.remote_workers)

    @property
    def distributed(self) -> bool:
        return self.total_workers > 0
