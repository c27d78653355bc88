"""Typed topology model. Loading a file gives a complete, valid `Topology` or a `SpecError`.

Every model forbids unknown keys through `StrictModel`, which reports the offending key
with a "did you mean" hint (pydantic's own `extra_forbidden` error carries no hint), and is
strict: where the JSON Schema says integer or boolean, `true`, `"3"` or `'yes'` are refused
rather than coerced. Every value that lands in a rendered config (haproxy.cfg, nginx.conf,
keepalived.conf, the PHP-FPM pool, prometheus.yml) is checked here for the syntax and range it
lands in, so a check path cannot write new lines into haproxy.cfg and `inter 0ms` never
renders.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import signal as _signal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
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
from harness.spec.durations import Duration, between, parse_duration, schema_between
from harness.spec.files import path_problem

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")]


def _duration(low: float, high: float | None = None, whole: bool = False, why: str = "") -> Any:
    """Metadata for a bounded duration field: `Annotated[float, *_duration(...)]`."""
    hi = high if high is not None else 7 * 86400.0
    return (
        BeforeValidator(parse_duration),
        AfterValidator(between(low, hi, whole=whole, why=why)),
        WithJsonSchema(schema_between(low, hi, whole)),
    )


# Durations rendered into configs in milliseconds: 0 would read as "none" or "infinite".
Millis = Annotated[float, *_duration(0.001, why="it is written to the config in milliseconds")]
CheckInterval = Annotated[float, *_duration(0.01, 3600, why="a check every 0ms is no check")]
VrrpSeconds = Annotated[
    float, *_duration(1, 255, whole=True, why="VRRPv2 advertises whole seconds from 1 to 255")
]
WholeSeconds = Annotated[
    float, *_duration(1, 86400, whole=True, why="the config takes whole seconds")
]
ScrapeInterval = Annotated[float, *_duration(0.1, 300)]
FailTimeout = Annotated[float, *_duration(1, 86400, why="nginx counts fail_timeout in seconds")]
Positive = Annotated[float, *_duration(0.001, why="0 is no time at all")]
LoadSeconds = Annotated[float, *_duration(1, why="Locust runs for whole seconds, at least 1")]
WaitSeconds = Annotated[float, *_duration(1, 3600)]


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


def _no_control(value: str, what: str = "it") -> str:
    bad = next((c for c in value if not c.isprintable()), None)
    if bad is not None:
        raise ValueError(
            f"{what} contains the control character {bad!r} (remove it: this text ends up in a "
            "config or a query)"
        )
    return value


def _path(value: str) -> str:
    problem = path_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# A file or directory named in the topology, relative to the topology file.
FilePath = Annotated[str, AfterValidator(_path)]

# URL paths HAProxy and the harness send as is: RFC 3986 characters, nothing the HAProxy config
# parser treats specially (space, #, quotes, backslash, $), no control character.
_URL_PATH = r"/[A-Za-z0-9._~%!*+,;=:@/-]*(\?[A-Za-z0-9._~%!*+,;=:@/?&-]*)?"


def _url_path(value: str) -> str:
    if not re.fullmatch(_URL_PATH, value, re.ASCII):
        shown = value if len(value) <= 40 else value[:37] + "..."
        bad = next((c for c in value if not re.fullmatch(r"[A-Za-z0-9._~%!*+,;=:@/?&-]", c)), None)
        why = (
            f"{bad!r} cannot appear in it unescaped" if bad is not None else "it must start with /"
        )
        raise ValueError(
            f"'{_one_line(shown)}' is not a URL path: {why} (write e.g. /health; "
            "percent-encode anything else, e.g. %20 for a space)"
        )
    if re.search(r"%(?![0-9A-Fa-f]{2})", value):
        raise ValueError("a % must start a percent-encoding such as %20 (write %25 for a %)")
    return value


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


UrlPath = Annotated[
    str,
    Field(max_length=1024),
    AfterValidator(_url_path),
    WithJsonSchema({"type": "string", "pattern": "^" + _URL_PATH + "$", "maxLength": 1024}),
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
EnvValue = Annotated[str, AfterValidator(lambda v: _no_nul(v))]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL byte, which no process can receive (remove it)")
    return value


Port = Annotated[int, Field(ge=1, le=65535)]


# ---------------------------------------------------------------- services


class Keepalived(StrictModel):
    vip: str = "auto"
    advert_int: VrrpSeconds = 1.0
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
    path: UrlPath = "/health"  # written into haproxy.cfg: `option httpchk GET <path>`
    interval: CheckInterval = 2.0
    timeout: Millis = 1.0
    fall: int = Field(default=3, ge=1, le=100)
    rise: int = Field(default=2, ge=1, le=100)


MEMORY_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MIN_MEMORY = 6 * 1024**2  # Docker refuses a memory limit below 6 MB


def _memory(value: str | None) -> str | None:
    if value is not None:
        number, unit = value.rstrip("kmg"), value[len(value.rstrip("kmg")) :]
        if int(number) * MEMORY_UNITS[unit] < MIN_MEMORY:
            raise ValueError(f"{value} is below the 6m Docker allows (use at least 6m)")
    return value


class Resources(StrictModel):
    cpus: float | None = Field(None, ge=0.01, le=1024)
    memory: Annotated[
        str | None, Field(pattern=r"^[0-9]{1,15}[kmg]?$"), AfterValidator(_memory)
    ] = None


HTTP_CHECK_PATTERN = r"^(:[0-9]{1,5})?(" + _URL_PATH + r")?$|^[0-9]{1,5}(" + _URL_PATH + r")?$"


class HealthCheck(StrictModel):
    """How the harness knows a container is ready (exactly one of http, tcp, exec, file)."""

    # a path (`/health`), `:port` or `:port/path`, fetched from the container's IP
    http: str | None = Field(None, pattern=HTTP_CHECK_PATTERN, min_length=1, max_length=1024)
    tcp: Port | None = None
    exec: str | None = Field(None, min_length=1)  # a shell command run inside; ready on exit 0
    file: str | None = Field(None, pattern=r"^/[^\x00-\x1f]*$")  # ready when this file exists
    timeout: WaitSeconds = 90.0

    @field_validator("http")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        port = re.match(r"^:?([0-9]+)", v or "")
        if port and not 1 <= int(port[1]) <= 65535:
            raise ValueError(f"port {port[1]} is outside 1-65535 (use a port from 1 to 65535)")
        return v

    @model_validator(mode="after")
    def _one(self) -> HealthCheck:
        given = [k for k in ("http", "tcp", "exec", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            fix = "keep one" if given else "add e.g. http: /health or tcp: 6379"
            raise ValueError(
                f"a healthcheck needs exactly one of http, tcp, exec, file, got "
                f"{', '.join(given) or 'none'} ({fix})"
            )
        return self


ContainerPath = Annotated[str, Field(pattern=r"^[^\x00-\x1f]*$", max_length=4096)]


# `runtime: hosts`: an existing machine reached over SSH (user and port optional; the user's
# ssh config and agent decide the rest)
SshUrl = Annotated[
    str,
    Field(
        pattern=r"^ssh://([A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$",
        max_length=330,
    ),
]
ShellCommand = Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_no_nul)]


class HostControl(StrictModel):
    """How faults act on a service's hosts (`runtime: hosts`): systemd's unit by default, or
    these commands, run through SSH with the host's shell."""

    unit: str | None = Field(None, pattern=r"^[A-Za-z0-9@._:-]{1,200}$")  # default: by kind
    stop: ShellCommand | None = None  # default: systemctl stop UNIT
    start: ShellCommand | None = None  # default: systemctl start UNIT
    kill: ShellCommand | None = None  # default: systemctl kill -s KILL UNIT
    log: str | None = Field(None, pattern=r"^(journal|/[^\x00-\x1f]*)$")  # journal, or a file


class ServiceBase(StrictModel):
    replicas: int = Field(1, ge=1, le=20)
    hosts: list[SshUrl] = Field(default_factory=list, max_length=20)  # runtime: hosts only
    lab: bool = False  # its hosts are lab machines: destructive faults need no --i-know
    control: HostControl | None = None  # runtime: hosts: how faults stop, start and kill it

    @model_validator(mode="after")
    def _replicas_are_hosts(self) -> ServiceBase:
        if self.hosts:
            if "replicas" in self.model_fields_set and self.replicas != len(self.hosts):
                raise ValueError(
                    f"replicas: {self.replicas} but {len(self.hosts)} hosts: with hosts, each "
                    "host is one instance (remove replicas:)"
                )
            self.replicas = len(self.hosts)
        return self

    image: Image | None = None
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    command: list[EnvValue] | EnvValue | None = None
    depends_on: list[str] = Field(default_factory=list)
    resources: Resources | None = None
    # A file (or Jinja2 template, *.j2) replacing the kind's main config, or {container path: file}.
    config: FilePath | dict[ContainerPath, FilePath] | None = None
    healthcheck: HealthCheck | None = None


class HAProxyService(ServiceBase):
    kind: Literal["haproxy"]
    backends: str
    balance: Literal["roundrobin", "leastconn", "source", "first", "random"] = "roundrobin"
    check: Check = Field(default_factory=Check)
    retries: int = Field(1, ge=0, le=10)
    redispatch: bool = True
    cookie: bool = False
    timeout_connect: Millis = 1.0
    timeout_server: Millis = 10.0
    keepalived: Keepalived | None = None
    # a server back UP takes its full weight over this long (HAProxy `slowstart`), not at once
    slowstart: Millis | None = None
    # overload protection: at most this many requests at once per server (HAProxy `maxconn`);
    # the rest wait in HAProxy's queue for up to `timeout_queue`, then get a 503
    maxconn: int | None = Field(None, ge=1, le=100_000)
    timeout_queue: Millis | None = None


class LimitReq(StrictModel):
    """Nginx `limit_req` over the whole LB: `rate` requests per second, `burst` more may wait
    (or pass at once with `nodelay`); the rest are answered `limit_status` at once."""

    rate: int = Field(ge=1, le=1_000_000)  # requests per second
    burst: int = Field(0, ge=0, le=1_000_000)
    nodelay: bool = True


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
    # instance -> weight (Nginx: `weight=` is a positive number)
    weights: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(default_factory=dict)
    max_fails: int = Field(1, ge=0, le=100)
    fail_timeout: FailTimeout = 10.0  # whole seconds in nginx.conf: rounded up
    next_upstream: list[NextUpstream] = Field(
        default_factory=lambda: list[NextUpstream](["error", "timeout"]), min_length=1
    )
    next_upstream_tries: int = Field(0, ge=0, le=100)
    timeout_connect: Millis = 1.0
    timeout_read: Millis = 10.0
    keepalived: Keepalived | None = None
    # overload protection: requests past the rate, or connections past the limit, are answered
    # `limit_status` by the LB in microseconds instead of queueing on the backends
    limit_req: LimitReq | None = None
    limit_conn: int | None = Field(None, ge=1, le=1_000_000)  # requests in progress, whole LB
    limit_status: Literal[503, 429] = 503

    @field_validator("next_upstream")
    @classmethod
    def _next_upstream(cls, v: list[str]) -> list[str]:
        dup = next((x for i, x in enumerate(v) if x in v[:i]), None)
        if dup is not None:
            raise ValueError(f"'{dup}' is listed twice (keep one)")
        if "off" in v and len(v) > 1:
            raise ValueError(
                "'off' turns retries off, so it cannot go with other conditions (keep off alone, or remove it)"
            )
        return v


class WebService(ServiceBase):
    kind: Literal["web"]
    app: FilePath = (
        "builtin"  # or a directory with the user's PHP app (public/index.php or index.php)
    )
    sessions: Literal["redis", "files"] = "redis"
    db_timeout: WholeSeconds = 5.0
    # the app's read path for a user's own orders (GET /orders/{id}): `replicas` sets
    # DB_READ_HOSTS to the database's replicas (the read/write split), `primary` reads where it
    # writes; either declares the read path `stale_reads` measures
    db_reads: Literal["primary", "replicas"] | None = None
    # the node's PHP-FPM pool (pm static): workers, and the listen queue in front of them (a full
    # queue makes Nginx answer 502 at once instead of waiting)
    max_children: int = Field(8, ge=1, le=500)
    listen_backlog: int | None = Field(None, ge=1, le=65535)


class PhpFpmService(ServiceBase):
    """A bare PHP-FPM pool on :9000 (FastCGI), for an Nginx LB with `protocol: fastcgi`."""

    kind: Literal["php-fpm"]
    app: FilePath = "builtin"
    sessions: Literal["redis", "files"] = "redis"
    db_timeout: WholeSeconds = 5.0
    pm: Literal["static", "dynamic", "ondemand"] = "static"
    max_children: int = Field(8, ge=1, le=500)
    # pm: dynamic only; PHP-FPM refuses to start unless min_spare <= start <= max_spare <= max_children
    start_servers: int = Field(2, ge=1, le=500)
    min_spare_servers: int = Field(1, ge=1, le=500)
    max_spare_servers: int = Field(3, ge=1, le=500)
    max_requests: int = Field(0, ge=0, le=10_000_000)
    listen_backlog: int | None = Field(None, ge=1, le=65535)  # the pool's listen queue


class CustomService(ServiceBase):
    """Any image: the harness only starts it on the run network, labels it and waits for it."""

    kind: Literal["custom"]
    image: Image  # required here
    ports: list[Port] = Field(default_factory=list)  # informational; nothing is ever published


class Sentinel(StrictModel):
    """Redis Sentinel beside every instance (one Sentinel per instance, so replicas >= 3)."""

    quorum: int = Field(2, ge=1, le=20)  # Sentinels that must agree the master is down
    down_after: Millis = 1.0  # sentinel down-after-milliseconds
    failover_timeout: Millis = 10.0  # sentinel failover-timeout


class RedisService(ServiceBase):
    kind: Literal["redis"]
    # replicas >= 2: the first instance is the master, the others replicate from it
    sentinel: Sentinel | None = None
    # a VIP that follows the master: Keepalived's tracking script passes only where
    # `ROLE` says master, so the app's sessions follow Sentinel's failover
    keepalived: Keepalived | None = None


class Replication(StrictModel):
    """GTID replication from the first instance to the others (kind: mariadb, replicas >= 2)."""

    mode: Literal["async", "semi_sync"] = "async"
    # semi_sync only: when the primary waits for a replica's acknowledgement (MariaDB's
    # rpl_semi_sync_master_wait_point), and how long before it falls back to async
    wait_point: Literal["after_sync", "after_commit"] = "after_sync"
    timeout: Millis = 10.0


class MariaDBService(ServiceBase):
    kind: Literal["mariadb", "mysql"]  # mysql: bring an image (MYSQL_* env is set for it)
    # replicas >= 2: the first instance is the primary, the others replicate from it
    replication: Replication | None = None
    # a VIP the app connects to; its holder is the primary (a replica is promoted on takeover)
    keepalived: Keepalived | None = None


class PrometheusService(ServiceBase):
    kind: Literal["prometheus"]
    scrape_interval: ScrapeInterval = 1.0


class ToxiproxyService(ServiceBase):
    """Added automatically when `links:` exist; declare it only to override its image."""

    kind: Literal["toxiproxy"]


# etcd grants no lease under 2 s with its default election timeout (a shorter TTL is raised).
LeaseTTL = Annotated[
    float, *_duration(2, 3600, whole=True, why="etcd grants leases in whole seconds, at least 2")
]


class RegistryService(ServiceBase):
    """A service registry (etcd from Debian, one member). Web instances behind a `gateway`
    register in it under a lease of `lease_ttl` and renew it every `heartbeat`; an instance whose
    heartbeats stop leaves the registry when its lease expires, and the gateways drop it."""

    kind: Literal["registry"]
    lease_ttl: LeaseTTL = 3.0
    heartbeat: Annotated[
        float, *_duration(0.1, 3600, why="a heartbeat every 0s is no heartbeat")
    ] = 1.0

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> RegistryService:
        if self.heartbeat >= self.lease_ttl:
            raise ValueError(
                f"heartbeat: {self.heartbeat:g}s is not shorter than lease_ttl: "
                f"{self.lease_ttl:g}s, so every lease would expire between two heartbeats "
                f"(use heartbeat: {max(0.1, round(self.lease_ttl / 3, 1)):g}s, a third of the "
                "lease, or a longer lease_ttl)"
            )
        if self.replicas != 1:
            raise ValueError(
                f"replicas: {self.replicas}, but a registry runs one etcd member "
                "(remove replicas:, or set replicas: 1)"
            )
        return self


class GatewayService(ServiceBase):
    """An API gateway: HAProxy whose backend servers are the instances of `backends` registered
    in `registry`, kept in step with it through HAProxy's runtime API. It sits behind an edge
    load balancer (an haproxy or nginx-lb whose `backends` is the gateway service)."""

    kind: Literal["gateway"]
    backends: str  # the web service whose instances register
    registry: str | None = None  # the registry service; default: the only one
    # dynamic servers (HAProxy's `add server`) need a dynamic algorithm
    balance: Literal["roundrobin", "leastconn", "first", "random"] = "roundrobin"
    check: Check = Field(default_factory=Check)
    retries: int = Field(1, ge=0, le=10)
    redispatch: bool = True
    timeout_connect: Millis = 1.0
    timeout_server: Millis = 10.0


Service = Annotated[
    HAProxyService
    | NginxLBService
    | WebService
    | PhpFpmService
    | RedisService
    | MariaDBService
    | PrometheusService
    | ToxiproxyService
    | RegistryService
    | GatewayService
    | CustomService,
    Field(discriminator="kind"),
]

# ---------------------------------------------------------------- load, chaos, assertions


def _locustfile(value: str) -> str:
    if "," in value:
        raise ValueError(
            "Locust reads a comma as a separator between locustfiles (rename the file or "
            "directory without the comma)"
        )
    return value


LocustfilePath = Annotated[str, AfterValidator(_path), AfterValidator(_locustfile)]
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


class TargetSpec(StrictModel):
    """Which container(s) a fault hits when not named directly: picked from a service, seeded."""

    service: str
    pick: Literal["random", "first", "last", "all"] = "random"
    count: int | None = Field(None, ge=1, le=20)
    percent: float | None = Field(None, gt=0, le=100)


# `web-1` (an instance), `web` (one instance of the service, picked at random with the run's seed),
# `vip_holder:lb` (whoever holds the VIP of service lb when the fault fires), or a TargetSpec.
Target = str | TargetSpec


class ContainerFault(StrictModel):
    target: Target
    restore: bool = True  # undo when the window ends (start/unpause); kill defaults to False


class KillFault(ContainerFault):
    restore: bool = False


def _signal_name(value: str) -> str:
    name = value.upper()
    if name.isdigit():
        if 1 <= int(name) <= 64:
            return value
    elif ("SIG" + name.removeprefix("SIG")) in SIGNALS:
        return value
    shown = _one_line(value if len(value) <= 20 else value[:17] + "...")
    raise ValueError(f"'{shown}' is not a signal (use e.g. SIGKILL, SIGTERM, SIGSTOP or SIGHUP)")


SIGNALS = sorted(
    s.name for s in _signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_")
)


class ProcessKillFault(StrictModel):
    target: Target
    # e.g. php-fpm8.2, haproxy, keepalived, nginx: matched against the process name, which
    # Linux cuts at 15 characters
    process: str = Field(pattern=r"^[A-Za-z0-9._+-]{1,15}$")
    signal: Annotated[str, AfterValidator(_signal_name)] = "SIGKILL"
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


class HeartbeatFreezeFault(StrictModel):
    """Stop a registered instance's heartbeats (its registration sidecar is frozen with
    SIGSTOP): the node keeps serving, but its lease expires and the gateways drop it."""

    target: Target
    restore: bool = True  # let the heartbeats go on (SIGCONT) when the window ends


def _batch(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and value < 1:
        raise ValueError(
            f"batch: {value} takes no node out, so the deploy would never move on "
            "(write batch: 1 for one node at a time, or batch: all)"
        )
    return value


# How many nodes go out at once: a count, or `all` (every node at once: the known-bad way).
Batch = Annotated[
    int | Literal["all"],
    BeforeValidator(_batch),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1, "maximum": 20}, {"const": "all"}]}),
]
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def _weight(value: object) -> float:
    """`10%` -> 0.1: the share of the traffic a canary gets."""
    m = _PERCENT.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(
            f"{_one_line(str(value))!r} is not a percentage (write the canary's share of the "
            "traffic, e.g. weight: 10%)"
        )
    pct = float(m.group(1))
    if not 0 < pct < 100:
        what = "more than all the traffic" if pct > 100 else f"{pct:g}% of the traffic"
        raise ValueError(
            f"weight: {pct:g}% is {what}; a canary gets a share between 0% and 100%, "
            "the stable nodes the rest (write e.g. weight: 10%)"
        )
    return pct / 100


Weight = Annotated[
    float,
    BeforeValidator(_weight),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$",
            "description": "the canary's share of the traffic, e.g. 10%",
        }
    ),
]


class RollingRestartFault(StrictModel):
    """Restart a service's nodes batch by batch, each taken out through the LB in front first
    (HAProxy runtime API drain then maint; Nginx `down` + reload) and put back once healthy."""

    service: str
    batch: Batch = 1
    drain: bool = True  # false: restart under the LB's feet (the known-bad way)
    drain_timeout: WaitSeconds = 30.0  # in-flight requests get this long to finish


class DeployFault(RollingRestartFault):
    """Replace the app of a web/php-fpm service: every node batch by batch (`rolling`), or
    `canaries` nodes given `weight` of the traffic on the LB (`canary`)."""

    app: FilePath  # a directory: public/index.php or index.php, relative to the topology file
    strategy: Literal["rolling", "canary"] = "rolling"
    weight: Weight | None = None  # canary: its share of the traffic, e.g. 10%
    canaries: int = Field(1, ge=1, le=19)  # canary: how many nodes (the service's last ones)


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
    heartbeat_freeze: HeartbeatFreezeFault | None = None
    rolling_restart: RollingRestartFault | None = None
    deploy: DeployFault | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `{kill: web-1}` is `{kill: {target: web-1}}`; `{vip_failover: lb}` is `{vip_failover: {service: lb}}`;
        # `{down: web->mysql}` is `{down: {link: web->mysql}}`.
        if isinstance(data, dict):
            keys = {"vip_failover": "service", "rolling_restart": "service"}
            keys |= dict.fromkeys(TOXIC_KINDS, "link")
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


StepName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_no_control)]


class ChaosStep(StrictModel):
    name: StepName
    at: Duration
    for_: Positive | None = Field(None, alias="for")
    # An instantaneous fault (a kill) is judged over this span after it; `for:` already is a window.
    window: Duration | None = None
    repeat: int = Field(1, ge=1, le=100)  # inject this many times...
    every: Positive | None = None  # ...this far apart (default: `for` + 5s)
    fault: Fault

    @field_validator("every")
    @classmethod
    def _every(cls, v: float | None, info: ValidationInfo) -> float | None:
        span = info.data.get("for_")
        if v is not None and span is not None and v < span:
            raise ValueError(
                f"every: {v:g}s is shorter than for: {span:g}s, so each injection would start "
                f"before the previous one is rolled back (use every: {span:g}s or more)"
            )
        return v

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
    url: str = Field(pattern=r"^https?://[^/\s]+(/\S*)?$", max_length=2048)


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
