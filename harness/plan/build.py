"""Topology → RunPlan: addresses, secrets, rendered configs, start order. Pure: no Docker here."""

from __future__ import annotations

import ipaddress
import secrets as _secrets
from pathlib import Path

from harness import kinds
from harness.kinds import toxiproxy
from harness.kinds.base import LB_KINDS, Context
from harness.plan.model import ContainerPlan, RunPlan, ScrapeTarget
from harness.spec.models import (
    HAProxyService,
    NginxLBService,
    PhpFpmService,
    PrometheusService,
    Topology,
    ToxiproxyService,
    WebService,
)
from harness.spec.semantic import instance_names

PROMETHEUS = "prometheus"
FIRST_HOST = 10  # .2-.9 are left free for the harness's own use
VIP_HOST = 200


def implicit_deps(topo: Topology, name: str) -> list[str]:
    svc = topo.services[name]
    deps = list(svc.depends_on)
    if isinstance(svc, HAProxyService | NginxLBService):
        deps.append(svc.backends)
    if isinstance(svc, WebService | PhpFpmService):
        deps += [n for n, s in topo.services.items() if s.kind in ("mariadb", "mysql", "redis")]
    if svc.kind == "toxiproxy":
        deps += [link.to for link in topo.links]
    if any(link.from_ == name for link in topo.links):
        deps += [n for n, s in topo.services.items() if s.kind == "toxiproxy"]
    return sorted(set(deps) - {name})


def levels(topo: Topology) -> list[list[str]]:
    """Services grouped so each depends only on earlier groups (the spec forbids cycles)."""
    remaining = {n: set(implicit_deps(topo, n)) for n in topo.services}
    out: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if deps <= done)
        if not ready:  # unreachable after validation; keep a clear message anyway
            raise ValueError(f"dependency cycle among {sorted(remaining)}")
        out.append(ready)
        done |= set(ready)
        for n in ready:
            del remaining[n]
    return out


def with_prometheus(topo: Topology) -> Topology:
    """Add the services every run has implicitly: Prometheus, and Toxiproxy when links exist."""
    services = dict(topo.services)
    if not any(s.kind == "prometheus" for s in services.values()):
        services[PROMETHEUS] = PrometheusService(kind="prometheus")
    if topo.links and not any(s.kind == "toxiproxy" for s in services.values()):
        services["toxiproxy"] = ToxiproxyService(kind="toxiproxy")
    return topo.model_copy(update={"services": services})


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
    hosts = list(net.hosts())
    gateway = str(hosts[0])
    ips: dict[str, str] = {}
    n = FIRST_HOST
    for name, svc in topo.services.items():
        for inst in instance_names(name, svc.replicas):
            ips[inst] = str(hosts[n - 1])
            n += 1
    vips: dict[str, str] = {}
    for i, (name, svc) in enumerate(topo.services.items()):
        ka = getattr(svc, "keepalived", None)
        if ka is not None:
            vips[name] = str(hosts[VIP_HOST - 1 + i]) if ka.vip == "auto" else ka.vip
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
    )
    order = levels(topo)
    # Prometheus renders last so it sees every scrape target the other kinds declared.
    by_service: dict[str, list[ContainerPlan]] = {}
    for name in sorted(topo.services, key=lambda s: topo.services[s].kind == "prometheus"):
        svc = topo.services[name]
        by_service[name] = kinds.get(svc.kind).containers(ctx, name, svc)
    plan_levels = [[c for name in level for c in by_service[name]] for level in order]
    containers = [c for level in plan_levels for c in level]
    prom = next(c for c in containers if c.kind == "prometheus")
    lb_name = topo.load.target or next(n for n, s in topo.services.items() if s.kind in LB_KINDS)
    load_host = (
        vips.get(lb_name) or ips[instance_names(lb_name, topo.services[lb_name].replicas)[0]]
    )
    proxies = {}
    for link in topo.links:
        proxy = next(c for c in containers if c.kind == "toxiproxy")
        proxies[link.name] = (f"http://{proxy.ip}:{toxiproxy.API_PORT}", toxiproxy.proxy_name(link))
    load_url = topo.load.url or f"http://{load_host}"
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
    )
