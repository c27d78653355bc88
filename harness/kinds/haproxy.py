"""HAProxy load balancer (+ Keepalived VIP): config rendered from the topology, promex on :8405."""

from __future__ import annotations

import re

from harness.kinds import keepalived
from harness.kinds.base import Context, apply_overrides, render
from harness.kinds.descriptor import Descriptor, Drain, Exporter, LogLines
from harness.plan.model import ContainerPlan, Wait
from harness.spec.models import HAProxyService

IMAGE = "lb"
METRICS_PORT = 8405
CONFIG = "/etc/haproxy/haproxy.cfg"
EXPORTER = Exporter("haproxy", METRICS_PORT)  # promex, built into HAProxy


def containers(ctx: Context, name: str, svc: HAProxyService) -> list[ContainerPlan]:
    backends = [(i, ctx.ips[i]) for i in ctx.instances(svc.backends)]
    cfg = render("haproxy.cfg.j2", svc=svc, backends=backends, metrics_port=METRICS_PORT)
    out = []
    for idx, inst in enumerate(ctx.instances(name)):
        files = {CONFIG: cfg}
        caps: list[str] = []
        if svc.keepalived:
            files.update(keepalived.files(ctx, name, svc.keepalived, idx, process="haproxy"))
            caps = keepalived.CAPS
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind="haproxy",
            image=svc.image or IMAGE,
            builtin_image=svc.image is None,
            ip=ctx.ips[inst],
            files=files,
            cap_add=caps,
            wait=Wait("http", f"http://{ctx.ips[inst]}:{METRICS_PORT}/metrics", 60),
        )
        out.append(apply_overrides(plan, svc, ctx, CONFIG))
        ctx.metrics_targets.append(EXPORTER.target(ctx.ips[inst], inst))
    return out


def ejection_bound(svc: HAProxyService) -> float:
    """Worst case from the config: `fall` failed checks, each of which can take the whole check
    timeout (a killed node's address stops answering, so checks time out rather than being
    refused), the next one starting `inter` after the previous ended."""
    return svc.check.fall * (svc.check.interval + svc.check.timeout)


def _ejection(svc: HAProxyService) -> tuple[float, str]:
    c = svc.check
    return ejection_bound(svc), f"fall {c.fall} x (inter {c.interval:g}s + timeout {c.timeout:g}s)"


def _backends_up(run_id: str, instance: str) -> str:
    return f'haproxy_server_status{{run="{run_id}",instance="{instance}",proxy="app",state="UP"}}'


DESCRIPTOR = Descriptor(
    image=IMAGE,
    ports={"http": 80, "metrics": METRICS_PORT},
    exporter=EXPORTER,
    log=LogLines(
        backend=(re.compile(r"Server (\S+)/(\S+) is (UP|DOWN)"),),
        started=(re.compile(r"New worker \(\d+\) forked"),),
    )
    + keepalived.LOG,
    tracks="haproxy",
    ejection=_ejection,
    backends_up=_backends_up,
    # the template's `server web-1 10.x.y.z:80 ...` lines; HAProxy weights go up to 256
    drain=Drain("runtime_api", CONFIG, re.compile(r"^\s*server\s+(\S+)\s+\S+", re.MULTILINE), 256),
)
