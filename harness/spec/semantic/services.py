"""Per-service checks: what each kind needs of its peers and of its own settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from harness.roles import Role, kinds_of
from harness.spec.liveness import instance_names
from harness.spec.models import Topology
from harness.spec.semantic.common import (
    DB_KINDS,
    HTTP_KINDS,
    POOL_KINDS,
    REGISTRY_KINDS,
    REPLICATING,
    Loc,
    hint,
)


def check_lb(topo: Topology, name: str, svc: Any, names: list[str]) -> Iterator[tuple[Loc, str]]:
    services = topo.services
    if svc.backends not in services:
        yield (
            ("services", name, "backends"),
            f"unknown service '{svc.backends}' ({hint(svc.backends, names)})",
        )
    else:
        backend_kind = services[svc.backends].kind
        fastcgi = getattr(svc, "protocol", "http") == "fastcgi"
        fpm = [n for n, s in services.items() if s.kind in POOL_KINDS]
        http = [n for n, s in services.items() if s.kind in HTTP_KINDS and n != name]
        if fastcgi and backend_kind not in POOL_KINDS:
            fix = (
                f"use {' or '.join(fpm)}" if fpm else "add a php-fpm service, or use protocol: http"
            )
            yield (
                ("services", name, "backends"),
                f"protocol: fastcgi needs a php-fpm service, '{svc.backends}' is {backend_kind} ({fix})",
            )
        elif not fastcgi and backend_kind not in HTTP_KINDS:
            if backend_kind in POOL_KINDS:
                fix = "use an nginx-lb with protocol: fastcgi"
            elif http:
                fix = f"name the web service, e.g. backends: {http[0]}"
            else:
                fix = "add a web service and name it here"
            yield (
                ("services", name, "backends"),
                f"HTTP backends must be web or custom, '{svc.backends}' is {backend_kind} ({fix})",
            )
        for inst in getattr(svc, "weights", {}):
            if inst not in instance_names(svc.backends, services[svc.backends].replicas):
                known = instance_names(svc.backends, services[svc.backends].replicas)
                yield (
                    ("services", name, "weights", inst),
                    f"'{inst}' is not an instance of {svc.backends} (use one of {', '.join(known)})",
                )
    if svc.keepalived and svc.replicas < 2:
        yield ("services", name, "keepalived"), "a VIP needs at least 2 replicas (set replicas: 2)"


def check_limits(name: str, svc: Any) -> Iterator[tuple[Loc, str]]:
    """Overload settings that could never apply (issue 13)."""
    if getattr(svc, "timeout_queue", None) is not None and svc.maxconn is None:
        yield (
            ("services", name, "timeout_queue"),
            "a server without maxconn never queues a request, so timeout_queue would never "
            "apply (add maxconn: N, e.g. the web node's PHP-FPM max_children)",
        )
    limits = getattr(svc, "limit_req", None) or getattr(svc, "limit_conn", None)
    if "limit_status" in svc.model_fields_set and not limits:
        yield (
            ("services", name, "limit_status"),
            "no limit_req or limit_conn is set, so nothing is ever rejected (add "
            "limit_req: {rate: N} or limit_conn: N, or remove limit_status)",
        )


def check_db(name: str, svc: Any) -> Iterator[tuple[Loc, str]]:
    """Replication and a database VIP (the built-in MariaDB image sets both up)."""
    repl = svc.replication
    if svc.kind not in REPLICATING and (svc.replicas > 1 or repl is not None):
        yield (
            ("services", name, "replication" if repl is not None else "replicas"),
            "replication is set up by the built-in MariaDB image (use kind: mariadb, "
            "or replicas: 1 without replication:)",
        )
    elif repl is not None and repl.mode == "semi_sync" and svc.replicas < 2:
        yield (
            ("services", name, "replication", "mode"),
            f"semi_sync makes the primary wait for a replica's acknowledgement, and '{name}' has "
            "no replica (set replicas: 2, or mode: async)",
        )
    if svc.keepalived is not None and svc.replicas < 2:
        yield (
            ("services", name, "keepalived"),
            "a database VIP moves to a replica, and there is none (set replicas: 2)",
        )


def check_redis(name: str, svc: Any) -> Iterator[tuple[Loc, str]]:
    """Sentinel runs one per instance and needs a majority that survives a dead master."""
    if svc.sentinel is not None:
        if svc.replicas < 3:
            yield (
                ("services", name, "sentinel"),
                f"Sentinel runs beside each instance, so '{name}' would have {svc.replicas} "
                "Sentinel(s), and fewer than 3 cannot outvote a dead master's (set replicas: 3)",
            )
        elif svc.sentinel.quorum > svc.replicas:
            yield (
                ("services", name, "sentinel", "quorum"),
                f"a quorum of {svc.sentinel.quorum} needs more Sentinels than the {svc.replicas} "
                f"'{name}' runs (set quorum: {svc.replicas // 2 + 1})",
            )
        if svc.keepalived is None:
            yield (
                ("services", name, "sentinel"),
                "the app reaches the master through a VIP that follows it "
                "(add keepalived: {vip: auto})",
            )
    elif svc.keepalived is not None:
        yield (
            ("services", name, "keepalived"),
            "a Redis VIP follows the master Sentinel elects (add sentinel: {quorum: 2})",
        )


def check_db_reads(topo: Topology, name: str, svc: Any) -> Iterator[tuple[Loc, str]]:
    """Reads from replicas need a replicated database to read from."""
    if getattr(svc, "db_reads", None) != "replicas":
        return
    db = next((s for s in topo.services.values() if s.kind in DB_KINDS), None)
    if db is None or db.kind not in REPLICATING or db.replicas < 2:
        yield (
            ("services", name, "db_reads"),
            "db_reads: replicas reads from the database's replicas, and it has none "
            "(give the mariadb service replicas: 2, or set db_reads: primary)",
        )


def check_gateway(
    topo: Topology, name: str, svc: Any, names: list[str]
) -> Iterator[tuple[Loc, str]]:
    """A gateway's servers are the instances of `backends` registered in its registry: they
    must be built-in web nodes (their image carries the registration sidecar)."""
    services = topo.services
    registries = [n for n, s in services.items() if s.kind in REGISTRY_KINDS]
    if svc.registry is not None and (
        svc.registry not in services or services[svc.registry].kind not in REGISTRY_KINDS
    ):
        yield (
            ("services", name, "registry"),
            f"'{svc.registry}' is not a registry service ({hint(svc.registry, registries)})",
        )
    elif svc.registry is None and len(registries) != 1:
        yield (
            ("services", name, "kind"),
            "a gateway discovers its servers in a registry, and there is none (add e.g. "
            "registry: {kind: registry})"
            if not registries
            else f"there are {len(registries)} registries (name one: registry: {registries[0]})",
        )
    backend = services.get(svc.backends)
    webs = [n for n, s in services.items() if s.kind in kinds_of(Role.WEB)]
    if backend is None:
        yield (
            ("services", name, "backends"),
            f"unknown service '{svc.backends}' ({hint(svc.backends, names)})",
        )
    elif backend.kind not in kinds_of(Role.WEB) or backend.image is not None:
        what = "runs its own image" if backend.kind in kinds_of(Role.WEB) else f"is {backend.kind}"
        yield (
            ("services", name, "backends"),
            f"a gateway's servers register themselves from the built-in web image, and "
            f"'{svc.backends}' {what} ("
            + (f"name a web service, e.g. backends: {webs[0]})" if webs else "add a web service)"),
        )


def check_pool(name: str, svc: Any) -> Iterator[tuple[Loc, str]]:
    """PHP-FPM refuses to start a dynamic pool unless min_spare <= start <= max_spare <= max_children."""
    if svc.pm != "dynamic":
        return
    loc: Loc = ("services", name)
    if svc.max_spare_servers > svc.max_children:
        yield (
            loc + ("max_spare_servers",),
            f"max_spare_servers: {svc.max_spare_servers} is above max_children: "
            f"{svc.max_children}, and PHP-FPM refuses to start (use at most {svc.max_children})",
        )
    if svc.min_spare_servers > svc.max_spare_servers:
        yield (
            loc + ("min_spare_servers",),
            f"min_spare_servers: {svc.min_spare_servers} is above max_spare_servers: "
            f"{svc.max_spare_servers}, and PHP-FPM refuses to start "
            f"(use at most {svc.max_spare_servers})",
        )
    if svc.start_servers > svc.max_children:
        yield (
            loc + ("start_servers",),
            f"start_servers: {svc.start_servers} is above max_children: {svc.max_children}, "
            f"and PHP-FPM refuses to start (use at most {svc.max_children})",
        )
    elif not svc.min_spare_servers <= svc.start_servers <= svc.max_spare_servers:
        yield (
            loc + ("start_servers",),
            f"start_servers: {svc.start_servers} must lie between min_spare_servers "
            f"({svc.min_spare_servers}) and max_spare_servers ({svc.max_spare_servers}), or "
            f"PHP-FPM refuses to start (use {svc.min_spare_servers} to {svc.max_spare_servers})",
        )
