"""What each service kind is, on the ground floor: its role and the facts validation needs.

The kind modules (harness/kinds/) render containers and declare how the harness watches, hurts
and bounds them (`DESCRIPTOR`). What the spec's semantic checks need to know about a kind sits
here instead, because harness/spec may not import harness/kinds: its role, which processes a
`process_kill` may start again (and with which command line), whether `config:` has a default
path, whether it replicates, whether Debian builds its image. Everything else asks by role
(`kinds_of(Role.LOAD_BALANCER)`), so no module outside harness/kinds and this table names a kind.

Adding a kind adds one entry to `FACTS` (see the guide in harness/kinds/__init__.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    LOAD_BALANCER = "load balancer"  # spreads the load over `backends`; may carry a VIP
    WEB = "web"  # answers HTTP and runs the PHP app (uses the database and the cache)
    APP_POOL = "app pool"  # a bare FastCGI pool running the PHP app
    DATABASE = "database"  # stores the app's orders (no_lost_writes reads them back)
    CACHE = "cache"  # holds the app's sessions
    REGISTRY = "registry"  # a service registry gateways discover instances in
    PROXY = "proxy"  # the harness's fault-injecting proxy that `links:` go through
    OBSERVER = "observer"  # the harness's Prometheus: scrapes everything, keeps seeing it
    CUSTOM = "custom"  # the user's own image


@dataclass(frozen=True)
class Process:
    """A process the kind's image runs under its supervisor (images/*/supervise.sh), which does
    not restart children: `restart` is the supervisor's own command line, `prestart` what must
    happen before it can start again."""

    name: str
    restart: str
    prestart: str = "true"


@dataclass(frozen=True)
class Facts:
    role: Role
    module: str  # the kind module (imported lazily by harness.kinds.get)
    processes: tuple[Process, ...] = ()  # what process_kill may kill and start again
    default_config: bool = True  # `config: file` has a default path (else {path: file})
    replicates: bool = False  # replicas: N is a primary and its replicas
    builtin_image: bool = True  # False: the user must bring `image:`
    singleton: bool = False  # the harness runs one, with one container
    app_data: bool = False  # the PHP app needs it (web and app pool nodes wait for it)
    # an LB whose servers come from a registry (a gateway): another LB may balance it
    discovers: bool = False
    drains: bool = False  # an LB that can take a backend out (rolling_restart, deploy, canary)
    unit: str = ""  # its systemd unit on an existing machine (runtime: hosts faults)


HAPROXY = Process("haproxy", "haproxy -W -db -f /etc/haproxy/haproxy.cfg")
NGINX = Process("nginx", "nginx -g 'daemon off;'")
PHP_FPM = Process(
    "php-fpm8.2", "php-fpm8.2 --nodaemonize --fpm-config /etc/php/8.2/fpm/php-fpm.conf"
)
# Keepalived will not start while a pidfile names a live PID, and a SIGKILLed one leaves its
# pidfiles behind (a restart only runs when no keepalived runs, so removing them is safe).
KEEPALIVED = Process(
    "keepalived",
    "keepalived --dont-fork --log-console --log-detail -f /etc/keepalived/keepalived.conf",
    "rm -f /run/keepalived.pid /run/vrrp.pid /run/checkers.pid",
)

PROCESSES = (HAPROXY, NGINX, PHP_FPM, KEEPALIVED)

FACTS: dict[str, Facts] = {
    "haproxy": Facts(
        Role.LOAD_BALANCER,
        "harness.kinds.haproxy",
        (HAPROXY, KEEPALIVED),
        unit="haproxy",
        drains=True,
    ),
    "nginx-lb": Facts(
        Role.LOAD_BALANCER,
        "harness.kinds.nginx_lb",
        (NGINX, KEEPALIVED),
        unit="nginx",
        drains=True,
    ),
    "web": Facts(Role.WEB, "harness.kinds.web", (NGINX, PHP_FPM), unit="nginx"),
    "php-fpm": Facts(Role.APP_POOL, "harness.kinds.php_fpm", (PHP_FPM,), unit="php8.2-fpm"),
    "mariadb": Facts(
        Role.DATABASE, "harness.kinds.mariadb", replicates=True, app_data=True, unit="mariadb"
    ),
    "mysql": Facts(
        Role.DATABASE,
        "harness.kinds.mariadb",
        builtin_image=False,
        app_data=True,
        unit="mysql",
    ),
    "redis": Facts(
        Role.CACHE, "harness.kinds.redis", default_config=False, app_data=True, unit="redis-server"
    ),
    "custom": Facts(Role.CUSTOM, "harness.kinds.custom", default_config=False),
    "prometheus": Facts(Role.OBSERVER, "harness.kinds.prometheus", singleton=True),
    "toxiproxy": Facts(Role.PROXY, "harness.kinds.toxiproxy", singleton=True),
    "gateway": Facts(Role.LOAD_BALANCER, "harness.kinds.gateway", (HAPROXY,), discovers=True),
    "registry": Facts(Role.REGISTRY, "harness.kinds.registry", default_config=False),
}


def role(kind: str) -> Role | None:
    facts = FACTS.get(kind)
    return facts.role if facts is not None else None


def kinds_of(*roles: Role) -> tuple[str, ...]:
    """Every kind with one of `roles`, in the table's order."""
    return tuple(k for k, f in FACTS.items() if f.role in roles)


def only(role_: Role) -> str:
    """The one kind with `role_` (the observer, the proxy: the harness adds them itself)."""
    (kind,) = kinds_of(role_)
    return kind


def kinds_where(**fact: object) -> tuple[str, ...]:
    """Kinds whose facts match, e.g. `kinds_where(replicates=True)`."""
    return tuple(k for k, f in FACTS.items() if all(getattr(f, n) == v for n, v in fact.items()))


def process(name: str) -> Process | None:
    """The process called `name` in any built-in kind's image."""
    return next((p for f in FACTS.values() for p in f.processes if p.name == name), None)


def restartable() -> dict[str, tuple[str, ...]]:
    """Process name → the kinds whose image runs it (what process_kill can start again)."""
    known = {p.name: p for f in FACTS.values() for p in f.processes}
    names = [p.name for p in PROCESSES if p.name in known] + [
        n for n in known if n not in {p.name for p in PROCESSES}
    ]
    return {n: tuple(k for k, f in FACTS.items() if known[n] in f.processes) for n in names}
