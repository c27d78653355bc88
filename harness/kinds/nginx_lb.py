"""Nginx as the load balancer: the classic upstream block with passive health checks
(`max_fails`/`fail_timeout`: open-source Nginx has no active checks and exposes no per-peer
state, so ejection is seen from the client side, through X-Served-By). HTTP to web nodes or
`fastcgi_pass` straight to a PHP-FPM pool. stub_status + Debian's nginx exporter on :9113."""

from __future__ import annotations

from harness.kinds import keepalived
from harness.kinds.base import Context, apply_overrides, render
from harness.plan.model import ContainerPlan, ScrapeTarget, Wait
from harness.spec.models import NginxLBService

IMAGE = "lb"
CONFIG_PATH = "/etc/nginx/nginx.conf"
EXPORTER_PORT = 9113


def containers(ctx: Context, name: str, svc: NginxLBService) -> list[ContainerPlan]:
    port = 9000 if svc.protocol == "fastcgi" else 80
    backends = [(i, ctx.ips[i], svc.weights.get(i, 1)) for i in ctx.instances(svc.backends)]
    cfg = render("nginx-lb.conf.j2", svc=svc, backends=backends, port=port)
    out = []
    for idx, inst in enumerate(ctx.instances(name)):
        files = {CONFIG_PATH: cfg, "/etc/harness/nginx-lb": "nginx\n"}
        caps: list[str] = []
        if svc.keepalived:
            files.update(keepalived.files(ctx, name, svc.keepalived, idx, process="nginx"))
            caps = keepalived.CAPS
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind="nginx-lb",
            image=svc.image or IMAGE,
            builtin_image=svc.image is None,
            ip=ctx.ips[inst],
            files=files,
            cap_add=caps,
            wait=Wait("http", f"http://{ctx.ips[inst]}:8080/stub_status", 60),
        )
        out.append(apply_overrides(plan, svc, ctx, CONFIG_PATH))
        ctx.metrics_targets.append(ScrapeTarget("nginx", f"{ctx.ips[inst]}:{EXPORTER_PORT}", inst))
    return out


def ejection_bound(svc: NginxLBService) -> float:
    """Passive checks: a dead peer is skipped after `max_fails` failed attempts within
    `fail_timeout`; a request that hits it waits up to `timeout_connect` before the next peer."""
    return svc.timeout_connect * max(1, svc.max_fails)
