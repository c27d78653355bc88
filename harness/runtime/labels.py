"""The labels every resource the harness creates carries (teardown and gc find things by them),
and the names its containers get."""

from __future__ import annotations

RUN = "io.harness.run"
TOPOLOGY = "io.harness.topology"
SERVICE = "io.harness.service"
INSTANCE = "io.harness.instance"
VIP = "io.harness.vip"  # on LB containers: the VIP their service floats
IMAGE = "io.harness.image"  # on images the harness built (a cache, not per run)


def for_run(
    run_id: str, topology: str, service: str | None = None, instance: str | None = None
) -> dict[str, str]:
    labels = {RUN: run_id, TOPOLOGY: topology}
    if service:
        labels[SERVICE] = service
    if instance:
        labels[INSTANCE] = instance
    return labels


def run_filter(run_id: str | None = None) -> dict[str, list[str]]:
    return {"label": [f"{RUN}={run_id}" if run_id else RUN]}


def container_name(run_id: str, instance: str) -> str:
    return f"harness-{run_id}-{instance}"
