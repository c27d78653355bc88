"""Every problem of one file's topology, in the order they are reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.roles import Role, kinds_of
from harness.spec import deploys, graph
from harness.spec.liveness import instance_names
from harness.spec.models import ChaosStep, Topology
from harness.spec.semantic.assertions import check_assertion
from harness.spec.semantic.common import (
    APP_KINDS,
    BRING_IMAGE,
    CACHE_KINDS,
    DB_KINDS,
    GATEWAY_KINDS,
    LB_KINDS,
    POOL_KINDS,
    Loc,
    hint,
)
from harness.spec.semantic.faults import check_fault, check_timing, resolve_fault_ref
from harness.spec.semantic.load import check_load
from harness.spec.semantic.network import (
    check_addresses,
    check_cycle,
    check_links,
    check_names,
    check_vip,
)
from harness.spec.semantic.paths import check_app, check_baseline, check_config
from harness.spec.semantic.services import (
    check_db,
    check_db_reads,
    check_gateway,
    check_lb,
    check_limits,
    check_pool,
    check_redis,
)


def check_topology(
    topo: Topology, base_dir: Path = Path("."), allow_external_target: bool = False
) -> Iterator[tuple[Loc, str]]:
    """Every problem of one file's topology; `allow_external_target` lets load.url leave the
    run's network (harness run --allow-external-target)."""
    services = topo.services
    names = sorted(services)
    instances = sorted(i for n, s in services.items() for i in instance_names(n, s.replicas))

    yield from check_names(topo)
    for name, svc in services.items():
        for i, dep in enumerate(svc.depends_on):
            if dep not in services:
                yield (
                    ("services", name, "depends_on", i),
                    f"unknown service '{dep}' ({hint(dep, names)})",
                )
            elif dep == name:
                yield (
                    ("services", name, "depends_on", i),
                    "a service cannot depend on itself (remove it)",
                )
            elif dep in svc.depends_on[:i]:
                yield (
                    ("services", name, "depends_on", i),
                    f"'{dep}' is listed twice (remove one)",
                )
        if svc.kind in POOL_KINDS:
            yield from check_pool(name, svc)
        if svc.kind in GATEWAY_KINDS:
            yield from check_gateway(topo, name, svc, names)
        elif svc.kind in LB_KINDS:
            yield from check_lb(topo, name, svc, names)
            yield from check_limits(name, svc)
        if svc.kind in DB_KINDS:
            yield from check_db(name, svc)
        if svc.kind in CACHE_KINDS:
            yield from check_redis(name, svc)
        if svc.kind in kinds_of(Role.WEB):
            yield from check_db_reads(topo, name, svc)
        keepalived = getattr(svc, "keepalived", None)  # any load-balancer kind may carry a VIP
        if keepalived is not None and keepalived.vip != "auto":
            yield from check_vip(topo, name, keepalived.vip)
        if svc.kind in APP_KINDS:
            app_svc: Any = svc
            if app_svc.sessions == "redis" and not any(
                s.kind in CACHE_KINDS for s in services.values()
            ):
                yield (
                    ("services", name, "sessions"),
                    "sessions: redis needs a service of kind redis (add one, or use files)",
                )
            if not any(s.kind in DB_KINDS for s in services.values()):
                yield (
                    ("services", name, "kind"),
                    "the PHP app needs a service of kind mariadb or mysql (add one)",
                )
            if app_svc.app != "builtin":
                yield from check_app(name, app_svc.app, base_dir)
        if svc.kind in BRING_IMAGE and svc.image is None:
            yield (
                ("services", name, "image"),
                "Debian ships no MySQL server (set image: to your MySQL image, or use kind: mariadb)",
            )
        yield from check_config(name, svc, base_dir)

    for i, link in enumerate(topo.links):
        for end in ("from", "to"):
            peer = link.from_ if end == "from" else link.to
            if peer not in services:
                yield ("links", i, end), f"unknown service '{peer}' ({hint(peer, names)})"
        if link.to in services and services[link.to].kind not in graph.DATA_KINDS:
            yield (
                ("links", i, "to"),
                "links can go to a mariadb, mysql or redis service (point it at the app's database or redis)",
            )
    yield from check_links(topo)
    yield from check_cycle(topo)
    yield from check_addresses(topo)
    yield from check_load(topo, base_dir, instances, allow_external_target)
    from harness.spec import hostsrt

    yield from hostsrt.check(topo)

    if topo.load.min_workers is not None and topo.load.min_workers > topo.load.total_workers:
        yield (
            ("load", "min_workers"),
            f"{topo.load.min_workers} is more than the {topo.load.total_workers} worker(s) the "
            "load has (workers plus master.remote_workers): lower min_workers or add workers",
        )
    if topo.load.target is not None and topo.load.target not in services:
        yield (
            ("load", "target"),
            f"unknown service '{topo.load.target}' ({hint(topo.load.target, names)})",
        )
    elif topo.load.target is not None and services[topo.load.target].kind in graph.AUTO_SERVICES:
        yield (
            ("load", "target"),
            f"'{topo.load.target}' is the harness's own {services[topo.load.target].kind}, not "
            "part of the stack under test (target a load balancer or web service)",
        )
    if (
        topo.load.target is None
        and topo.load.url is None
        and not any(s.kind in LB_KINDS for s in services.values())
    ):
        yield (
            ("load",),
            "no load balancer to send load to (add a haproxy or nginx-lb service, or set load.target)",
        )

    seen: dict[str, ChaosStep] = {}
    for i, step in enumerate(topo.chaos):
        if step.name in seen:
            yield ("chaos", i, "name"), f"duplicate step name '{step.name}' (names must be unique)"
        seen.setdefault(step.name, step)
        if step.at >= topo.load.duration:
            yield (
                ("chaos", i, "at"),
                (
                    f"{step.at:g}s is not before the end of the load at {topo.load.duration:g}s "
                    "(move it earlier or lengthen load.duration)"
                ),
            )
        else:
            yield from check_timing(topo, i, step)
        yield from check_fault(topo, i, step, names, instances)
        if step.fault.kind in ("rolling_restart", "deploy"):  # issue 13
            loc = ("chaos", i, "fault", step.fault.kind)
            yield from deploys.check_step(topo, loc, step.fault.kind, step.fault.params, base_dir)

    titles: set[str] = set()
    for i, a in enumerate(topo.assertions):
        if a.title in titles:
            yield ("assertions", i), f"duplicate assertion '{a.title}' (give it a unique name:)"
        titles.add(a.title)
        if a.during == "calm" and a.kind not in ("error_budget", "session_continuity"):
            yield (
                ("assertions", i, "during"),
                f"calm (every moment outside the fault windows) is made of several stretches, "
                f"which only counts can be summed over; {a.kind} cannot (use steady or recovery)",
            )
        if a.during.startswith("fault:"):
            _, problem = resolve_fault_ref(a.during[6:], seen, "fault:")
            if problem:
                yield ("assertions", i, "during"), problem
        yield from check_assertion(topo, i, a, names, seen, base_dir)

    yield from check_baseline(topo, base_dir)
