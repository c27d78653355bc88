"""Service registry: etcd from Debian (one member, client port 2379), the closest thing to Nacos
this machine can install. Web instances behind a `gateway` register in it: each puts
`/harness/services/<service>/<instance>` = `ip:80` under a lease of the registry's `lease_ttl`
and renews the lease every `heartbeat` (images/web/register.sh). An instance whose heartbeats
stop leaves the registry when its lease expires (etcd sweeps expired leases every 500 ms), and
the gateways drop it. The registry container prints every PUT and DELETE under the prefix as
etcd delivers it (images/registry/registry-start.sh), so Docker's timestamp on that line is the
registry's own deregistration instant, which `harness.watch.registry` exports."""

from __future__ import annotations

from harness.kinds.base import Context, apply_overrides
from harness.kinds.descriptor import Descriptor
from harness.plan.model import ContainerPlan, Wait
from harness.spec.models import GatewayService, RegistryService, Topology

IMAGE = "registry"
PORT = 2379
PREFIX = "/harness/services/"
# etcd revokes expired leases in a loop every 500 ms, so a lease outlives its TTL by up to that.
EXPIRY_SWEEP = 0.5


def key_prefix(service: str) -> str:
    """Where the instances of `service` register (one key each, named after the instance)."""
    return f"{PREFIX}{service}/"


def containers(ctx: Context, name: str, svc: RegistryService) -> list[ContainerPlan]:
    out = []
    for inst in ctx.instances(name):
        ip = ctx.ips[inst]
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind="registry",
            image=svc.image or IMAGE,
            builtin_image=svc.image is None,
            ip=ip,
            env={"REGISTRY_IP": ip, "REGISTRY_PREFIX": PREFIX},
            command=["/usr/local/bin/registry-start.sh"],
            wait=Wait("http", f"http://{ip}:{PORT}/health", 60),
        )
        out.append(apply_overrides(plan, svc, ctx))
    return out


def registry_of(topo: Topology, gateway: GatewayService) -> str | None:
    """The registry a gateway discovers in: its `registry:`, else the only registry service."""
    if gateway.registry is not None:
        return gateway.registry
    found = [n for n, s in topo.services.items() if isinstance(s, RegistryService)]
    return found[0] if len(found) == 1 else None


def registration(topo: Topology, service: str) -> tuple[str, RegistryService] | None:
    """(registry name, its model) when a gateway discovers `service`: its instances register."""
    for svc in topo.services.values():
        if isinstance(svc, GatewayService) and svc.backends == service:
            name = registry_of(topo, svc)
            reg = topo.services.get(name) if name is not None else None
            if isinstance(reg, RegistryService):
                return name, reg  # type: ignore[return-value]
    return None


def registration_env(ctx: Context, service: str, instance: str, port: int = 80) -> dict[str, str]:
    """What images/web/register.sh reads; empty when no gateway discovers `service`."""
    found = registration(ctx.topology, service)
    if found is None:
        return {}
    name, reg = found
    return {
        "HARNESS_REGISTRY": f"http://{ctx.ips[ctx.instances(name)[0]]}:{PORT}",
        "HARNESS_REGISTRY_KEY": key_prefix(service) + instance,
        "HARNESS_REGISTRY_VALUE": f"{ctx.ips[instance]}:{port}",
        "HARNESS_REGISTRY_TTL": str(int(reg.lease_ttl)),
        "HARNESS_REGISTRY_HEARTBEAT": f"{reg.heartbeat:g}",
    }


DESCRIPTOR = Descriptor(image=IMAGE, ports={"client": PORT})
