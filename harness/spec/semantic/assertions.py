"""Assertions: the services and steps they name, and `compare.tolerance` keys."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.roles import Role, kinds_of
from harness.spec import deploys, graph
from harness.spec.compare import is_duration
from harness.spec.models import ASSERTION_KINDS, ChaosStep, Topology
from harness.spec.semantic.common import DB_KINDS, REPLICATING, Loc, file_problem, hint
from harness.spec.semantic.faults import resolve_fault_ref

DURATION_KINDS = ("ejection_time", "failover_time", "latency", "recovery_time")


def check_tolerances(topo: Topology, titles: list[str]) -> Iterator[tuple[Loc, str]]:
    assert topo.compare is not None
    kind_of = {a.title: a.kind for a in topo.assertions}
    known = ["default", *ASSERTION_KINDS, *titles]
    for key, value in topo.compare.tolerance.items():
        loc: Loc = ("compare", "tolerance", key)
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            named = [t for t in titles if t not in ASSERTION_KINDS]
            fix = (
                f"did you mean '{close[0]}'?"
                if close
                else f"use default, an assertion kind such as {ASSERTION_KINDS[2]}"
                + (f", or an assertion's name: {', '.join(named)}" if named else "")
            )
            yield (
                loc,
                f"'{key}' is neither an assertion kind, an assertion's name nor default ({fix})",
            )
            continue
        kind = key if key in ASSERTION_KINDS else kind_of.get(key)
        if kind is not None and kind not in DURATION_KINDS + ("promql",) and is_duration(value):
            yield (
                loc,
                f"'{value}' is a duration, but {kind} is not measured in seconds "
                "(write +N in its own unit or +N%)",
            )


def check_assertion(
    topo: Topology, i: int, a: Any, names: list[str], steps: dict[str, ChaosStep], base_dir: Path
) -> Iterator[tuple[Loc, str]]:
    loc: Loc = ("assertions", i, a.kind)
    p = a.params
    service = getattr(p, "service", None)
    if a.kind == "ejection_time" and service is not None:
        backends = [getattr(s, "backends", None) for s in topo.services.values()]
        if service not in topo.services:
            yield loc + ("service",), f"unknown service '{service}' ({hint(service, names)})"
        elif service not in backends:
            yield (
                loc + ("service",),
                f"'{service}' is not behind a load balancer (name the LB's backends service)",
            )
    if a.kind == "failover_time" and (
        service not in topo.services or getattr(topo.services[service], "keepalived", None) is None
    ):
        vip_services = [n for n, s in topo.services.items() if getattr(s, "keepalived", None)]
        yield (
            loc + ("service",),
            f"'{service}' is not a service with a VIP ({hint(str(service), vip_services)})",
        )
    fault = getattr(p, "fault", None)
    if fault is not None:
        _, problem = resolve_fault_ref(fault, steps, "fault: ")
        if problem:
            yield loc + ("fault",), problem
    if a.kind == "testinfra":
        if p.hosts not in topo.services:
            yield loc + ("hosts",), f"unknown service '{p.hosts}' ({hint(p.hosts, names)})"
        problem = file_problem(base_dir, p.module)
        if problem:
            yield loc + ("module",), problem
        # Its results are labelled by module and service: the same pair twice would share them.
        twin = next((j for j, b in enumerate(topo.assertions[:i]) if _same_check(b, p)), None)
        if twin is not None:
            yield (
                loc + ("module",),
                f"{p.module} already runs on {p.hosts} in assertions[{twin}] (keep one of the two)",
            )
    if a.kind == "no_lost_writes" and not any(s.kind in DB_KINDS for s in topo.services.values()):
        yield (
            loc,
            "no_lost_writes needs a mariadb or mysql service (add one, e.g. mysql: {kind: mariadb})",
        )
    if a.kind == "replication_lag":
        yield from _check_replication_lag(topo, loc, p)
    if a.kind == "canary":
        yield from deploys.check_canary(topo, loc, p)
    if a.kind == "stale_reads":
        yield from _check_stale_reads(topo, loc)
    if a.kind == "testinfra" and p.hosts in topo.services:
        kind = topo.services[p.hosts].kind
        if kind in graph.AUTO_SERVICES:
            yield (
                loc + ("hosts",),
                f"'{p.hosts}' is the harness's own {kind} (name a service of the stack)",
            )


def _same_check(b: Any, p: Any) -> bool:
    q = b.testinfra
    return q is not None and (os.path.normpath(q.module), q.hosts) == (
        os.path.normpath(p.module),
        p.hosts,
    )


def _check_replication_lag(topo: Topology, loc: Loc, p: Any) -> Iterator[tuple[Loc, str]]:
    """replication_lag reads the heartbeat of a replicated (built-in) MariaDB."""
    replicated = [
        n
        for n, s in topo.services.items()
        if s.kind in REPLICATING and s.image is None and s.replicas > 1
    ]
    if p.service is None:
        if not replicated:
            yield (
                loc,
                "replication_lag needs a replicated database (give a mariadb service replicas: 2)",
            )
        elif len(replicated) > 1:
            yield (
                loc + ("service",),
                f"{len(replicated)} databases replicate (name one: service: {replicated[0]})",
            )
    elif p.service not in replicated:
        yield (
            loc + ("service",),
            f"'{p.service}' is not a replicated mariadb "
            f"({hint(p.service, replicated) if replicated else 'give it replicas: 2'})",
        )


def _check_stale_reads(topo: Topology, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """stale_reads measures an app whose read path is declared (`db_reads` on a web service)."""
    if not any(getattr(s, "db_reads", None) for s in topo.services.values()):
        web = next((n for n, s in topo.services.items() if s.kind in kinds_of(Role.WEB)), "web")
        yield (
            loc,
            "stale_reads measures a read/write-split app, and no web service declares its "
            f"read path (add db_reads: replicas to '{web}', or db_reads: primary for the control)",
        )
