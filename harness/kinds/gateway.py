"""API gateway: HAProxy whose backend `app` starts empty and is filled from the registry. A
watcher beside it (images/registry/gateway-sync.sh) watches the registry's keys for the
`backends` service and reconciles HAProxy through its runtime API: a new instance becomes a
server (`add server`, named after the instance, with the gateway's health check), an instance
whose lease expired goes to maintenance, one that registers again comes back. Each change is
logged as `Server app/<instance> is UP|DOWN`, which the LB log watcher turns into the same
backend-state instants as any HAProxy's. It sits behind an edge LB, whose backends are the
gateway instances."""

from __future__ import annotations

import re

from harness.kinds import registry
from harness.kinds.base import Context, apply_overrides, render
from harness.kinds.descriptor import Descriptor, Exporter, LogLines
from harness.plan.model import ContainerPlan, ScrapeTarget, Wait
from harness.spec.models import GatewayService, RegistryService, Topology

IMAGE = "registry"
METRICS_PORT = 8405
CONFIG_PATH = "/etc/haproxy/haproxy.cfg"
# The watcher reconciles at least this often without an event, and within ~50 ms of one.
RESYNC = 1.0
SYNC_ALLOWANCE = 0.5  # an event → the runtime API call → the logged line


def server_args(svc: GatewayService) -> str:
    """The keywords each registered server is added with (`add server` ignores default-server)."""
    c = svc.check
    return f"check inter {round(c.interval * 1000)}ms fall {c.fall} rise {c.rise}"


def containers(ctx: Context, name: str, svc: GatewayService) -> list[ContainerPlan]:
    reg = registry.registry_of(ctx.topology, svc)
    assert reg is not None  # checked by the spec's semantic pass
    cfg = render("gateway.cfg.j2", svc=svc, metrics_port=METRICS_PORT)
    out = []
    for inst in ctx.instances(name):
        ip = ctx.ips[inst]
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind="gateway",
            image=svc.image or IMAGE,
            builtin_image=svc.image is None,
            ip=ip,
            env={
                "GATEWAY_REGISTRY": f"{ctx.ips[ctx.instances(reg)[0]]}:{registry.PORT}",
                "GATEWAY_PREFIX": registry.key_prefix(svc.backends),
                "GATEWAY_BACKEND": "app",
                "GATEWAY_SERVER_ARGS": server_args(svc),
                "GATEWAY_RESYNC": f"{RESYNC:g}",
            },
            files={CONFIG_PATH: cfg},
            command=["/usr/local/bin/gateway-start.sh"],
            wait=Wait("http", f"http://{ip}:{METRICS_PORT}/metrics", 60),
        )
        out.append(apply_overrides(plan, svc, ctx, CONFIG_PATH))
        ctx.metrics_targets.append(ScrapeTarget("haproxy", f"{ip}:{METRICS_PORT}", inst))
    return out


def ejection_bound(topo: Topology, svc: GatewayService) -> tuple[float, str]:
    """Worst case from heartbeats stopping to the gateway dropping the instance: the lease lives
    `lease_ttl` after its last renewal (the renewal just before the fault), etcd's sweep finds it
    up to 0.5 s later, and the watcher acts on the DELETE event (or its resync) within
    `SYNC_ALLOWANCE`. A dead node is found sooner by the gateway's own health check, so this
    bounds a kill too."""
    name = registry.registry_of(topo, svc)
    reg = topo.services.get(name) if name is not None else None
    ttl = reg.lease_ttl if isinstance(reg, RegistryService) else 0.0
    bound = ttl + registry.EXPIRY_SWEEP + SYNC_ALLOWANCE
    how = (
        f"lease_ttl {ttl:g}s + etcd's expiry sweep {registry.EXPIRY_SWEEP:g}s "
        f"+ gateway sync {SYNC_ALLOWANCE:g}s"
    )
    return bound, how


def _backends_up(run_id: str, instance: str) -> str:
    return f'haproxy_server_status{{run="{run_id}",instance="{instance}",proxy="app",state="UP"}}'


DESCRIPTOR = Descriptor(
    image=IMAGE,
    ports={"http": 80, "metrics": METRICS_PORT},
    exporter=Exporter("haproxy", METRICS_PORT),
    # HAProxy's own health-check lines and the watcher's registry lines say the same thing
    log=LogLines(
        backend=(re.compile(r"Server (\S+)/(\S+) is (UP|DOWN)"),),
        started=(re.compile(r"New worker \(\d+\) forked"),),
    ),
    backends_up=_backends_up,
    ejection_in=ejection_bound,
)
