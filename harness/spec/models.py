"""Typed topology model. Loading a file gives a complete, valid `Topology` or a `SpecError`.

Every model forbids unknown keys through `StrictModel`, which reports the offending key
with a "did you mean" hint (pydantic's own `extra_forbidden` error carries no hint).
"""

from __future__ import annotations

import difflib
import ipaddress
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from harness.spec.compare import check_tolerance, parse_tolerance
from harness.spec.durations import JSON_SCHEMA as DURATION_SCHEMA
from harness.spec.durations import Duration, parse_duration

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]


class StrictModel(BaseModel):
    # allow_inf_nan=False: `.inf`/`.nan` are valid YAML floats but never a meaningful setting here.
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=False, allow_inf_nan=False
    )

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = set(cls.model_fields)
        known |= {f.alias for f in cls.model_fields.values() if f.alias}
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
                hint = (
                    f"did you mean '{close[0]}'?"
                    if close
                    else f"known keys: {', '.join(sorted(known))}"
                )
                raise PydanticCustomError(
                    "unknown_key", "unknown key '{key}' ({hint})", {"key": str(key), "hint": hint}
                )
        return data


# ---------------------------------------------------------------- services


class Keepalived(StrictModel):
    vip: str = "auto"
    advert_int: Duration = 1.0
    priority: int = Field(150, ge=1, le=254)
    preempt: bool = True
    track_process: bool = True

    @field_validator("vip")
    @classmethod
    def _vip(cls, v: str) -> str:
        if v != "auto":
            try:
                ipaddress.IPv4Address(v)
            except ValueError:
                raise ValueError(
                    f"'{v}' is not an IPv4 address (write 'auto', or an address inside network.subnet "
                    "such as 10.213.7.200)"
                ) from None
        return v


PRIVATE_NETWORKS = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)


class Network(StrictModel):
    """The run's bridge network. Without `subnet`, a free /24 of 10.213.0.0/16 is picked at run time."""

    subnet: str | None = None

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, v: str | None) -> str | None:
        if v is None:
            return v
        example = "e.g. 10.213.7.0/24"
        try:
            net = ipaddress.IPv4Network(v)
        except ValueError:
            try:
                loose = ipaddress.IPv4Network(v, strict=False)
            except ValueError:
                raise ValueError(f"'{v}' is not an IPv4 network (write {example})") from None
            raise ValueError(f"'{v}' has host bits set (write {loose})") from None
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"'{v}' is a /{net.prefixlen} (use a /16 to /24, {example})")
        if not any(net.subnet_of(p) for p in PRIVATE_NETWORKS):
            raise ValueError(
                f"'{v}' is not a private network (use 10.x, 172.16-31.x or 192.168.x, {example})"
            )
        return str(net)


class Check(StrictModel):
    path: str = "/health"
    interval: Duration = 2.0
    timeout: Duration = 1.0
    fall: int = Field(default=3, ge=1, le=100)
    rise: int = Field(default=2, ge=1, le=100)


class Resources(StrictModel):
    cpus: float | None = Field(None, gt=0)
    memory: str | None = Field(None, pattern=r"^\d+[kmg]?$")


class HealthCheck(StrictModel):
    """How the harness knows a container is ready (exactly one of http, tcp, exec, file)."""

    http: str | None = None  # a path (`/health`) or `:port/path`, fetched from the container's IP
    tcp: int | None = Field(None, ge=1, le=65535)
    exec: str | None = None  # a shell command run inside the container; ready when it exits 0
    file: str | None = None  # ready when this file exists inside the container
    timeout: Duration = 90.0

    @model_validator(mode="after")
    def _one(self) -> HealthCheck:
        n = sum(v is not None for v in (self.http, self.tcp, self.exec, self.file))
        if n != 1:
            raise ValueError("a healthcheck needs exactly one of http, tcp, exec, file")
        return self


class ServiceBase(StrictModel):
    replicas: int = Field(1, ge=1, le=20)
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    command: list[str] | str | None = None
    depends_on: list[str] = Field(default_factory=list)
    resources: Resources | None = None
    # A file (or Jinja2 template, *.j2) replacing the kind's main config, or {container path: file}.
    config: str | dict[str, str] | None = None
    healthcheck: HealthCheck | None = None


class HAProxyService(ServiceBase):
    kind: Literal["haproxy"]
    backends: str
    balance: Literal["roundrobin", "leastconn", "source", "first", "random"] = "roundrobin"
    check: Check = Field(default_factory=Check)
    retries: int = Field(1, ge=0, le=10)
    redispatch: bool = True
    cookie: bool = False
    timeout_connect: Duration = 1.0
    timeout_server: Duration = 10.0
    keepalived: Keepalived | None = None


NextUpstream = Literal[
    "error",
    "timeout",
    "invalid_header",
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "http_429",
    "non_idempotent",
    "off",
]


class NginxLBService(ServiceBase):
    """The classic upstream block: passive health checks only (open-source Nginx)."""

    kind: Literal["nginx-lb"]
    backends: str
    protocol: Literal["http", "fastcgi"] = "http"  # fastcgi: straight to a php-fpm pool on :9000
    balance: Literal["roundrobin", "least_conn", "ip_hash"] = "roundrobin"
    weights: dict[str, int] = Field(default_factory=dict)  # instance -> weight
    max_fails: int = Field(1, ge=0, le=100)
    fail_timeout: Duration = 10.0
    next_upstream: list[NextUpstream] = Field(
        default_factory=lambda: list[NextUpstream](["error", "timeout"])
    )
    next_upstream_tries: int = Field(0, ge=0)
    timeout_connect: Duration = 1.0
    timeout_read: Duration = 10.0
    keepalived: Keepalived | None = None


class WebService(ServiceBase):
    kind: Literal["web"]
    app: str = "builtin"  # or a directory with the user's PHP app (public/index.php or index.php)
    sessions: Literal["redis", "files"] = "redis"
    db_timeout: Duration = 5.0


class PhpFpmService(ServiceBase):
    """A bare PHP-FPM pool on :9000 (FastCGI), for an Nginx LB with `protocol: fastcgi`."""

    kind: Literal["php-fpm"]
    app: str = "builtin"
    sessions: Literal["redis", "files"] = "redis"
    db_timeout: Duration = 5.0
    pm: Literal["static", "dynamic", "ondemand"] = "static"
    max_children: int = Field(8, ge=1, le=500)
    start_servers: int = Field(2, ge=1)
    min_spare_servers: int = Field(1, ge=1)
    max_spare_servers: int = Field(3, ge=1)
    max_requests: int = Field(0, ge=0)


class CustomService(ServiceBase):
    """Any image: the harness only starts it on the run network, labels it and waits for it."""

    kind: Literal["custom"]
    image: str  # required here
    ports: list[int] = Field(default_factory=list)  # informational; nothing is ever published


class RedisService(ServiceBase):
    kind: Literal["redis"]


class MariaDBService(ServiceBase):
    kind: Literal["mariadb", "mysql"]  # mysql: bring an image (MYSQL_* env is set for it)


class PrometheusService(ServiceBase):
    kind: Literal["prometheus"]
    scrape_interval: Duration = 1.0


class ToxiproxyService(ServiceBase):
    """Added automatically when `links:` exist; declare it only to override its image."""

    kind: Literal["toxiproxy"]


Service = Annotated[
    HAProxyService
    | NginxLBService
    | WebService
    | PhpFpmService
    | RedisService
    | MariaDBService
    | PrometheusService
    | ToxiproxyService
    | CustomService,
    Field(discriminator="kind"),
]

# ---------------------------------------------------------------- load, chaos, assertions


class Stage(StrictModel):
    """Hold `users` for `duration` (reached at `spawn_rate` per second): ramps and plateaus."""

    duration: Duration
    users: int = Field(ge=0, le=10000)
    spawn_rate: float | None = Field(default=None, gt=0)


class UserMix(StrictModel):
    weight: int = Field(default=1, ge=0, le=1000)


class Load(StrictModel):
    locustfile: str = "locustfiles/session_user.py"
    users: int = Field(default=20, ge=1, le=10000)
    spawn_rate: float = Field(default=10, gt=0)
    duration: Duration = 60.0
    target: str | None = None  # a service name; default: the first load balancer (its VIP if any)
    url: str | None = Field(default=None, pattern=r"^https?://[^/\s]+(/\S*)?$")  # instead of target
    stages: list[Stage] = Field(default_factory=list)  # a LoadTestShape; the load lasts their sum
    user_classes: dict[str, UserMix] = Field(
        default_factory=dict
    )  # class name in the locustfile -> weight
    rate: float | None = Field(
        default=None, gt=0
    )  # fixed arrival rate per user (req/s): constant_throughput
    workers: int = Field(default=0, ge=0, le=64)  # > 0: Locust master + this many worker processes

    @model_validator(mode="after")
    def _stages_set_duration(self) -> Load:
        if self.stages:
            self.duration = sum(s.duration for s in self.stages)
            self.users = max(1, max(s.users for s in self.stages))
        return self


class TargetSpec(StrictModel):
    """Which container(s) a fault hits when not named directly: picked from a service, seeded."""

    service: str
    pick: Literal["random", "first", "last", "all"] = "random"
    count: int | None = Field(None, ge=1)
    percent: float | None = Field(None, gt=0, le=100)


# `web-1` (an instance), `web` (one instance of the service, picked at random with the run's seed),
# `vip_holder:lb` (whoever holds the VIP of service lb when the fault fires), or a TargetSpec.
Target = str | TargetSpec


class ContainerFault(StrictModel):
    target: Target
    restore: bool = True  # undo when the window ends (start/unpause); kill defaults to False


class KillFault(ContainerFault):
    restore: bool = False


class ProcessKillFault(StrictModel):
    target: Target
    process: str  # e.g. php-fpm8.2, haproxy, keepalived, nginx
    signal: str = "SIGKILL"
    restore: bool = True  # restart the process when the window ends


class VipFailoverFault(StrictModel):
    service: str
    method: Literal["kill", "stop_keepalived", "kill_lb_process"] = "kill"
    restore: bool = True


class ToxicFault(StrictModel):
    """A Toxiproxy toxic on a declared link (`web->mysql`)."""

    link: str
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)
    latency: Duration | None = None  # latency toxic
    jitter: Duration | None = None
    rate: int | None = Field(None, ge=0)  # bandwidth, KB/s
    timeout: Duration | None = None  # timeout, reset_peer
    delay: Duration | None = None  # slow_close; slicer (per slice)
    average_size: int | None = Field(None, ge=1)  # slicer
    size_variation: int | None = Field(None, ge=0)
    bytes: int | None = Field(None, ge=0)  # limit_data


class PartitionFault(StrictModel):
    target: Target
    peers: list[str] | Literal["all"] = "all"  # services or instances it can no longer reach


class Fault(StrictModel):
    kill: KillFault | None = None
    stop: ContainerFault | None = None
    restart: ContainerFault | None = None
    pause: ContainerFault | None = None
    process_kill: ProcessKillFault | None = None
    vip_failover: VipFailoverFault | None = None
    latency: ToxicFault | None = None
    bandwidth: ToxicFault | None = None
    timeout: ToxicFault | None = None
    reset_peer: ToxicFault | None = None
    slow_close: ToxicFault | None = None
    slicer: ToxicFault | None = None
    limit_data: ToxicFault | None = None
    down: ToxicFault | None = None
    partition: PartitionFault | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `{kill: web-1}` is `{kill: {target: web-1}}`; `{vip_failover: lb}` is `{vip_failover: {service: lb}}`;
        # `{down: web->mysql}` is `{down: {link: web->mysql}}`.
        if isinstance(data, dict):
            keys = {"vip_failover": "service"} | dict.fromkeys(TOXIC_KINDS, "link")
            data = {
                k: ({keys.get(k, "target"): v} if isinstance(v, str) else v)
                for k, v in data.items()
            }
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> Fault:
        set_ = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(set_) != 1:
            fix = "keep one; use one chaos step per fault" if set_ else "write e.g. {kill: web-1}"
            raise ValueError(
                f"a fault needs exactly one kind, got {len(set_)}: {', '.join(set_) or 'none'} ({fix})"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    @property
    def params(self) -> Any:
        return getattr(self, self.kind)


TOXIC_KINDS = (
    "latency",
    "bandwidth",
    "timeout",
    "reset_peer",
    "slow_close",
    "slicer",
    "limit_data",
    "down",
)


def injection_name(step: str, k: int) -> str:
    """What the k-th injection (from 1) of a repeated step is called: `name`, `name #2`, ..."""
    return step if k == 1 else f"{step} #{k}"


class ChaosStep(StrictModel):
    name: str
    at: Duration
    for_: Duration | None = Field(None, alias="for")
    # An instantaneous fault (a kill) is judged over this span after it; `for:` already is a window.
    window: Duration | None = None
    repeat: int = Field(1, ge=1, le=100)  # inject this many times...
    every: Duration | None = None  # ...this far apart (default: `for` + 5s)
    fault: Fault

    @field_validator("window")
    @classmethod
    def _window(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is None:
            return v
        if info.data.get("for_") is not None:
            raise ValueError(
                f"window: is for instantaneous faults, and this step has for: "
                f"{info.data['for_']:g}s, which already is its window (remove window:)"
            )
        if v <= 0:
            raise ValueError("a window of 0s judges nothing (write e.g. window: 10s)")
        return v

    @property
    def interval(self) -> float:
        """Seconds between two injections: `every`, by default the window plus 5 s."""
        return self.every if self.every is not None else (self.for_ or 0.0) + 5.0

    def injections(self) -> list[tuple[float, str]]:
        """(offset from the load start, name) of every injection, as the schedule fires them."""
        return [
            (self.at + k * self.interval, injection_name(self.name, k + 1))
            for k in range(self.repeat)
        ]


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
    max: Duration
    request: str | None = None  # a request name (e.g. /whoami); default: all


class RecoveryTime(StrictModel):
    """Last fault ends → steady again: backends up, VIP on its master, no client failures."""

    max: Duration


class NoLostWrites(StrictModel):
    max_missing: int = Field(0, ge=0)


class TestinfraCheck(StrictModel):
    """A testinfra test module run against a service's containers after the load."""

    module: str
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
)


class Assertion(StrictModel):
    name: str | None = None
    during: Window = "run"
    session_continuity: SessionContinuity | None = None
    ejection_time: EjectionTime | None = None
    failover_time: FailoverTime | None = None
    error_budget: ErrorBudget | None = None
    latency: LatencyBound | None = None
    recovery_time: RecoveryTime | None = None
    no_lost_writes: NoLostWrites | None = None
    testinfra: TestinfraCheck | None = None
    promql: str | None = None
    below: float | None = None
    above: float | None = None
    between: tuple[float, float] | None = None

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
            raise ValueError("between: [low, high] needs low <= high")
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


class Link(StrictModel):
    """Put a proxy between two services: clients of `to` in `from` connect through it."""

    from_: str = Field(alias="from")
    to: str
    via: Literal["toxiproxy"] = "toxiproxy"
    image: str | None = None  # e.g. a real Toxiproxy image; default: the harness's own proxy

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

    baseline: str | None = None  # a run directory or its journal.json, relative to this file
    tolerance: dict[str, Tolerance] = Field(default_factory=lambda: {"default": "+10%"})

    def tolerance_for(self, kind: str, title: str | None = None) -> tuple[str, float]:
        """("relative" | "absolute", value) for an assertion; +10% when nothing matches."""
        for key in (title, kind, "default"):
            if key is not None and key in self.tolerance:
                return parse_tolerance(self.tolerance[key])
        return parse_tolerance("+10%")


class Topology(StrictModel):
    version: Literal[1] = 1
    name: Name
    description: str = ""
    services: dict[Name, Service]
    links: list[Link] = Field(default_factory=list)
    network: Network = Field(default_factory=Network)
    load: Load = Field(default_factory=Load)
    seed: int = 0  # picks random targets and toxicity reproducibly
    chaos: list[ChaosStep] = Field(default_factory=list)
    experiments: list[str] = Field(
        default_factory=list
    )  # files under chaos/, relative to this file
    assertions: list[Assertion] = Field(default_factory=list)
    compare: Compare | None = None  # a regression gate against a previous run


class Experiment(StrictModel):
    """A reusable chaos experiment (chaos/*.yaml): fault steps and the assertions they call for,
    referenced from a topology's `experiments:` and picked with `harness run --experiment NAME`."""

    version: Literal[1] = 1
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    description: str = ""
    chaos: list[ChaosStep] = Field(min_length=1)
    assertions: list[Assertion] = Field(default_factory=list)
