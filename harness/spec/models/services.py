"""One model class per service kind (`kind: Literal[...]`), and the `Service` union the
topology's `services:` map is read into."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from harness.spec.models.base import (
    FailTimeout,
    FilePath,
    Image,
    Millis,
    Port,
    ScrapeInterval,
    StrictModel,
    WholeSeconds,
    bounded,
)
from harness.spec.models.common import (
    Check,
    Keepalived,
    ServiceBase,
)


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
    """The classic upstream block: passive health checks (`max_fails`), and active ones with
    `check:` (open-source Nginx has none: images/lb/nginx-upstreams.sh checks in its place)."""

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
    # active health checks: GET `path` on each server every `interval`; `fall` failures in a
    # row mark it `down` (a reload), `rise` successes bring it back
    check: Check | None = None
    keepalived: Keepalived | None = None
    # overload protection: requests past the rate, or connections past the limit, are answered
    # `limit_status` by the LB in microseconds instead of queueing on the backends
    limit_req: LimitReq | None = None
    limit_conn: int | None = Field(None, ge=1, le=1_000_000)  # requests in progress, whole LB
    limit_status: Literal[503, 429] = 503

    @field_validator("check")
    @classmethod
    def _check(cls, v: Check | None, info: ValidationInfo) -> Check | None:
        if v is not None and info.data.get("protocol") == "fastcgi":
            raise ValueError(
                "a FastCGI pool answers no HTTP path to check (use protocol: http, or drop check)"
            )
        return v

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
    float, *bounded(2, 3600, whole=True, why="etcd grants leases in whole seconds, at least 2")
]


class RegistryService(ServiceBase):
    """A service registry (etcd from Debian, one member). Web instances behind a `gateway`
    register in it under a lease of `lease_ttl` and renew it every `heartbeat`; an instance whose
    heartbeats stop leaves the registry when its lease expires, and the gateways drop it."""

    kind: Literal["registry"]
    lease_ttl: LeaseTTL = 3.0
    heartbeat: Annotated[float, *bounded(0.1, 3600, why="a heartbeat every 0s is no heartbeat")] = (
        1.0
    )

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
