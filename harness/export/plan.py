"""The plan an export renders from: the runtime's own `make_plan`, with a run id and a subnet
chosen here instead of by a running harness.

Two flavours. `address_plan` is exactly what `harness up` would start (static IPs in the run's
subnet, Keepalived VIPs): Compose can reproduce it. `name_plan` renders the same kinds with each
instance's DNS name where an address goes: Swarm and Kubernetes assign addresses themselves, so
a config there has to reach its peers by name."""

from __future__ import annotations

import ipaddress
import secrets as _secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness import kinds
from harness.kinds.base import LB_KINDS, Context
from harness.plan.build import make_plan, with_prometheus
from harness.plan.check import load_topology
from harness.plan.model import ContainerPlan, RunPlan
from harness.roles import Role, kinds_of
from harness.runtime import images
from harness.spec.addresses import EXAMPLE_SUBNET
from harness.spec.models import Topology

KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
RESOLVERS = """resolvers orchestrator
    parse-resolv-conf
    hold valid 1s
    hold obsolete 5s

"""


def resolve_at_runtime(cfg: str) -> str:
    """HAProxy resolves server names once at start and refuses to start when one is missing.
    Services an orchestrator starts together appear in its DNS in any order, so under Swarm and
    Kubernetes a server may start unresolved (`init-addr none`) and be resolved again through
    the container's own resolver (Docker's 127.0.0.11, kube-dns)."""
    if "default-server " not in cfg or "\ndefaults" not in cfg:
        return cfg
    cfg = cfg.replace("\ndefaults", "\n" + RESOLVERS + "defaults", 1)
    return cfg.replace(
        "default-server ", "default-server init-addr last,libc,none resolvers orchestrator ", 1
    )


def new_run_id() -> str:
    """Same shape as a run's id (`harness down ID` and `harness gc` take it)."""
    return f"{datetime.now():%Y%m%d-%H%M%S}-{_secrets.token_hex(2)}"


@dataclass
class Exported:
    """What every exporter starts from."""

    topology: Topology  # with the automatic services (Prometheus) added
    plan: RunPlan
    source: Path
    image_tags: dict[str, str]  # built-in image context -> the tag `harness images build` makes

    def image(self, c: ContainerPlan) -> str:
        return self.image_tags[c.image] if c.builtin_image else c.image


def load(
    topology_file: str | Path, run_id: str | None = None, subnet: str | None = None
) -> tuple[Topology, str, str]:
    """The validated topology (no assertions needed: an export judges nothing), a run id and the
    subnet: `--subnet`, else the topology's `network.subnet`, else the validation example."""
    topo = load_topology(topology_file, require_assertions=False)
    net = subnet or topo.network.subnet or EXAMPLE_SUBNET
    return topo, run_id or new_run_id(), str(ipaddress.IPv4Network(net))


def _tags(plan: RunPlan) -> dict[str, str]:
    return {c.image: images.image_tag(c.image) for c in plan.containers if c.builtin_image}


def address_plan(
    topology_file: str | Path,
    run_id: str | None = None,
    subnet: str | None = None,
    secrets: dict[str, str] | None = None,
) -> Exported:
    topo, rid, net = load(topology_file, run_id, subnet)
    plan = make_plan(topo, rid, net, [], secrets=secrets, base_dir=Path(topology_file).parent)
    return Exported(with_prometheus(topo), plan, Path(topology_file), _tags(plan))


def name_plan(
    topology_file: str | Path,
    run_id: str | None = None,
    subnet: str | None = None,
    address: Callable[[str, str, int], str] | None = None,
    secrets: dict[str, str] | None = None,
) -> Exported:
    """The kinds rendered with names for addresses: an instance is reached as its own name, a
    service's VIP as the service name for a load balancer (the orchestrator's service address)
    and as its first instance otherwise. Keepalived files are dropped: the orchestrator's
    service address replaces the VIP."""
    topo, rid, net = load(topology_file, run_id, subnet)
    ip_plan = make_plan(topo, rid, net, [], secrets=secrets, base_dir=Path(topology_file).parent)
    full = with_prometheus(topo)
    ctx = Context(
        topology=full,
        run_id=rid,
        gateway=ip_plan.gateway,
        ips={
            c.instance: (address or _own_name)(c.service, c.instance, _index(ip_plan, c))
            for c in ip_plan.containers
        },
        vips={
            name: name
            if full.services[name].kind in LB_KINDS
            else ip_plan.instances(name)[0].instance
            for name in ip_plan.vips
        },
        secrets=dict(ip_plan.secrets),
        metrics_targets=[],
        base_dir=Path(topology_file).parent,
        prefixlen=ipaddress.IPv4Network(net).prefixlen,
    )
    by_service: dict[str, list[ContainerPlan]] = {}
    observers = kinds_of(Role.OBSERVER)  # rendered last: it scrapes what the others declared
    for name in sorted(full.services, key=lambda s: full.services[s].kind in observers):
        by_service[name] = kinds.get(full.services[name].kind).containers(
            ctx, name, full.services[name]
        )
    containers = [
        c
        for level in ip_plan.levels
        for c0 in level
        for c in by_service[c0.service]
        if c.instance == c0.instance
    ]
    for c in containers:
        c.files.pop(KEEPALIVED_CONF, None)
        if HAPROXY_CFG in c.files:
            c.files[HAPROXY_CFG] = resolve_at_runtime(c.files[HAPROXY_CFG])
    plan = RunPlan(
        run_id=rid,
        topology=full.name,
        subnet=net,
        gateway=ip_plan.gateway,
        containers=containers,
        levels=[
            [c for c in containers if c.instance in {x.instance for x in lv}]
            for lv in ip_plan.levels
        ],
        vips={},
        secrets=ctx.secrets,
        load_url=ip_plan.load_url,
        prometheus_url=ip_plan.prometheus_url,
        scrape=ctx.metrics_targets,
        toxiproxy=ip_plan.toxiproxy,
        seed=full.seed,
    )
    return Exported(full, plan, Path(topology_file), _tags(plan))


def _own_name(service: str, instance: str, index: int) -> str:
    return instance


def _index(plan: RunPlan, c: ContainerPlan) -> int:
    return [i.instance for i in plan.instances(c.service)].index(c.instance)


def k8s_name(name: str) -> str:
    """A service's name as Kubernetes allows it (RFC 1123: lower case, no underscore)."""
    return name.replace("_", "-").lower()


def lb_services(topo: Topology) -> list[str]:
    return [n for n, s in topo.services.items() if s.kind in LB_KINDS]
