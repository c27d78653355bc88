"""Topology → RunPlan: addresses, secrets, rendered configs, start order. Pure: no Docker here."""

from __future__ import annotations

import ipaddress
import secrets as _secrets
from pathlib import Path

from harness import kinds
from harness.kinds import toxiproxy
from harness.kinds.base import Context
from harness.plan.model import ContainerPlan, RunPlan, ScrapeTarget
from harness.roles import Role, kinds_of
from harness.spec.addresses import FIRST_HOST, VIP_HOST, allocate
from harness.spec.graph import PROMETHEUS, implicit_deps, levels
from harness.spec.graph import with_auto_services as with_prometheus
from harness.spec.liveness import instance_names
from harness.spec.models import Topology

__all__ = [
    "FIRST_HOST",
    "PROMETHEUS",
    "VIP_HOST",
    "implicit_deps",
    "levels",
    "make_plan",
    "with_prometheus",
]


def make_plan(
    topo: Topology,
    run_id: str,
    subnet: str,
    exporters: list[ScrapeTarget],
    secrets: dict[str, str] | None = None,
    base_dir: Path = Path("."),
) -> RunPlan:
    topo = with_prometheus(topo)
    net = ipaddress.IPv4Network(subnet)
    gateway = str(net.network_address + 1)
    addresses = allocate(topo, subnet)  # the same rule validation checked the topology with
    ips, vips = addresses.ips, addresses.vips
    ctx = Context(
        topology=topo,
        run_id=run_id,
        gateway=gateway,
        ips=ips,
        vips=vips,
        secrets=secrets
        or {"db_password": _secrets.token_hex(12), "redis_password": _secrets.token_hex(12)},
        metrics_targets=list(exporters),
        base_dir=base_dir,
        prefixlen=net.prefixlen,
    )
    order = levels(topo)
    # Prometheus renders last so it sees every scrape target the other kinds declared.
    by_service: dict[str, list[ContainerPlan]] = {}
    observers = kinds_of(Role.OBSERVER)
    for name in sorted(topo.services, key=lambda s: topo.services[s].kind in observers):
        svc = topo.services[name]
        by_service[name] = kinds.get(svc.kind).containers(ctx, name, svc)
    plan_levels = [[c for name in level for c in by_service[name]] for level in order]
    containers = [c for level in plan_levels for c in level]
    prom = next(c for c in containers if c.kind in observers)
    load_url = topo.load.url
    if load_url is None:  # validation made sure there is a target or a load balancer
        lb_name = topo.load.target or next(
            n for n, s in topo.services.items() if s.kind in kinds_of(Role.LOAD_BALANCER)
        )
        load_host = (
            vips.get(lb_name) or ips[instance_names(lb_name, topo.services[lb_name].replicas)[0]]
        )
        load_url = f"http://{load_host}"
    proxies = {}
    for link in topo.links:
        proxy = next(c for c in containers if c.kind in kinds_of(Role.PROXY))
        proxies[link.name] = (f"http://{proxy.ip}:{toxiproxy.API_PORT}", toxiproxy.proxy_name(link))
    return RunPlan(
        run_id=run_id,
        topology=topo.name,
        subnet=str(net),
        gateway=gateway,
        containers=containers,
        levels=plan_levels,
        vips=vips,
        secrets=ctx.secrets,
        load_url=load_url,
        prometheus_url=f"http://{prom.ip}:9090",
        scrape=ctx.metrics_targets,
        toxiproxy=proxies,
        seed=topo.seed,
        vip_owner={
            service: None if _sticky(topo.services[service]) else by_service[service][0].instance
            for service in vips
        },
    )


def _sticky(service: object) -> bool:
    """A Keepalived pair that does not preempt: its first holder is whoever won the election."""
    ka = getattr(service, "keepalived", None)
    return ka is not None and not ka.preempt
