"""Prometheus for the run: scrapes every target the other kinds declared plus the harness's own
exporters on the host side of the bridge. Always present, added when the topology omits it."""

from __future__ import annotations

from harness.kinds.base import Context, apply_overrides, render
from harness.kinds.descriptor import Descriptor
from harness.plan.model import ContainerPlan, Wait
from harness.spec.models import PrometheusService

IMAGE = "prometheus"
PORT = 9090


def containers(ctx: Context, name: str, svc: PrometheusService) -> list[ContainerPlan]:
    inst = ctx.instances(name)[0]
    cfg = render(
        "prometheus.yml.j2",
        run_id=ctx.run_id,
        interval=svc.scrape_interval,
        targets=ctx.metrics_targets,
    )
    plan = ContainerPlan(
        instance=inst,
        service=name,
        kind="prometheus",
        image=svc.image or IMAGE,
        builtin_image=svc.image is None,
        ip=ctx.ips[inst],
        files={"/etc/prometheus/prometheus.yml": cfg},
        wait=Wait("http", f"http://{ctx.ips[inst]}:{PORT}/-/ready", 60),
    )
    return [apply_overrides(plan, svc, ctx, "/etc/prometheus/prometheus.yml")]


DESCRIPTOR = Descriptor(image=IMAGE, ports={"http": PORT})
