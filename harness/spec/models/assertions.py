"""Assertions: what a run is judged by (exactly one kind per assertion)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    WithJsonSchema,
    model_validator,
)

from harness.spec.durations import JSON_SCHEMA as DURATION_SCHEMA
from harness.spec.durations import Duration, parse_duration
from harness.spec.models.base import (
    FilePath,
    Positive,
    StrictModel,
)
from harness.spec.models.chaos import (
    StepName,
)

Window = Annotated[str, Field(pattern=r"^(steady|recovery|calm|run|fault:.+)$")]


class SessionContinuity(StrictModel):
    max_lost: int = Field(0, ge=0)


class ErrorBudget(StrictModel):
    max_error_ratio: float = Field(0.01, ge=0, le=1)


def _bound(value: object) -> object:
    return value if value == "auto" else parse_duration(value)


# A duration, or `auto`: the worst case the topology's own configuration allows.
Bound = Annotated[
    float | Literal["auto"],
    BeforeValidator(_bound),
    WithJsonSchema(
        {
            "anyOf": [DURATION_SCHEMA, {"const": "auto"}],
            "description": "a duration, or auto: the worst case the topology's config allows",
        }
    ),
]


class EjectionTime(StrictModel):
    """Fault instant → the LB stops routing to the dead node (LB-side and client-side reported)."""

    service: str  # the backend service a fault hits
    max: Bound = "auto"
    fault: str | None = None  # the chaos step; default: the first one hitting `service`
    side: Literal["lb", "client"] | None = (
        None  # which figure the bound applies to (default: lb if the LB tells)
    )


class FailoverTime(StrictModel):
    """Fault instant → first successful response through the VIP from the new holder."""

    service: str  # the LB service carrying the VIP
    max: Bound = "auto"
    fault: str | None = None


class LatencyBound(StrictModel):
    quantile: float = Field(0.95, gt=0, lt=1)
    max: Positive
    # a request name (e.g. /whoami); default: all. Written into a PromQL label matcher.
    request: str | None = Field(None, pattern=r'^[^"\\\x00-\x1f]{1,200}$')


class RecoveryTime(StrictModel):
    """Last fault ends → steady again: backends up, VIP on its master, no client failures."""

    max: Duration


class NoLostWrites(StrictModel):
    max_missing: int = Field(0, ge=0)


class ReplicationLag(StrictModel):
    """How far a replica may trail its primary, from the heartbeat the primary writes every
    100 ms (exact to the microsecond; the figure includes up to one heartbeat period)."""

    max: Positive
    service: str | None = None  # a replicated mariadb; default: the only one


class StaleReads(StrictModel):
    """Read-your-writes from the client's side: the share of read-backs of a user's own
    acknowledged order that did not find it (harness/verdict/stale.py)."""

    max_ratio: float = Field(0.0, ge=0, le=1)


class Overload(StrictModel):
    """Shed, don't stall: past capacity, requests the system turns away are turned away fast
    (rejected: an answer with a `reject_status`, their `quantile` under `rejected_max`), the ones
    it accepts keep their bound (`accepted_max`), and at most `max_stalled_ratio` of requests end
    any other way (timeouts, 502/504, connection errors)."""

    accepted_max: Positive
    rejected_max: Positive
    quantile: float = Field(0.95, gt=0, lt=1)
    reject_status: list[Annotated[int, Field(ge=400, le=599)]] = Field(
        default_factory=lambda: [503, 429], min_length=1
    )
    max_stalled_ratio: float = Field(0.01, ge=0, le=1)


class CanaryCheck(StrictModel):
    """The canary nodes of a `deploy: {strategy: canary}` step against the stable ones, over
    the same window, per node from X-Served-By (harness/verdict/canary.py)."""

    service: str  # the service the canary deploy replaced the app of
    fault: str | None = None  # the canary deploy step; default: the first on `service`
    max_error_increase: float = Field(0.005, ge=0, le=1)  # canary ratio <= stable ratio + this
    quantile: float = Field(0.95, gt=0, lt=1)
    max_latency_ratio: float = Field(1.2, ge=1)  # canary quantile <= stable quantile x this


class TestinfraCheck(StrictModel):
    """A testinfra test module run against a service's containers after the load."""

    module: FilePath
    hosts: str  # a service name: every instance of it is a host


ASSERTION_KINDS = (
    "session_continuity",
    "ejection_time",
    "failover_time",
    "error_budget",
    "latency",
    "recovery_time",
    "no_lost_writes",
    "promql",
    "testinfra",
    "replication_lag",
    "overload",
    "stale_reads",
    "canary",
)


def _promql(value: str) -> str:
    if not value.strip():
        raise ValueError(
            'an empty PromQL expression measures nothing (write one, e.g. up{run="$run"})'
        )
    return value


class Assertion(StrictModel):
    name: StepName | None = None
    during: Window = "run"
    session_continuity: SessionContinuity | None = None
    ejection_time: EjectionTime | None = None
    failover_time: FailoverTime | None = None
    error_budget: ErrorBudget | None = None
    latency: LatencyBound | None = None
    recovery_time: RecoveryTime | None = None
    no_lost_writes: NoLostWrites | None = None
    testinfra: TestinfraCheck | None = None
    replication_lag: ReplicationLag | None = None
    overload: Overload | None = None
    stale_reads: StaleReads | None = None
    canary: CanaryCheck | None = None
    promql: (
        Annotated[
            str,
            AfterValidator(_promql),
            WithJsonSchema({"type": "string", "pattern": r"\S"}),
        ]
        | None
    ) = None
    below: float | None = None
    above: float | None = None
    between: tuple[float, float] | None = Field(None, strict=False)  # YAML gives a list

    @model_validator(mode="after")
    def _one_kind(self) -> Assertion:
        kinds = [k for k in ASSERTION_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"an assertion needs exactly one kind, got {len(kinds)}: {', '.join(kinds) or 'none'} "
                f"(keep one of {', '.join(ASSERTION_KINDS)}; one assertion per list item)"
            )
        bounds = [b for b in ("below", "above", "between") if getattr(self, b) is not None]
        if self.promql is not None and len(bounds) != 1:
            raise ValueError(
                "a promql assertion needs one of 'below', 'above', 'between' (add e.g. below: 0.5)"
            )
        if self.promql is None and bounds:
            raise ValueError(
                f"'{bounds[0]}' belongs to promql assertions (the other kinds take max:)"
            )
        if self.between is not None and self.between[0] > self.between[1]:
            low, high = self.between
            raise ValueError(
                f"between: [low, high] needs low <= high, got [{low:g}, {high:g}] "
                f"(write [{high:g}, {low:g}])"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ASSERTION_KINDS if getattr(self, k) is not None)

    @property
    def params(self) -> Any:
        return getattr(self, self.kind)

    @property
    def title(self) -> str:
        return self.name or self.kind
