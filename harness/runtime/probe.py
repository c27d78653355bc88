"""Point-in-time questions asked of the running containers (one exec, no watcher): who holds a
service's VIP right now. Chaos asks it when a fault fires (`vip_holder:lb`, `vip_failover`),
the baseline asks it before any fault."""

from __future__ import annotations

from collections.abc import Mapping

from docker.models.containers import Container

from harness.plan.model import RunPlan


def vip_holder(containers: Mapping[str, Container], plan: RunPlan, service: str) -> str | None:
    vip = plan.vips.get(service)
    if vip is None:
        return None
    for c in plan.instances(service):
        container = containers.get(c.instance)
        if container is None:
            continue
        try:
            code, out = container.exec_run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        except Exception:  # noqa: BLE001 - a dead or paused LB holds nothing
            continue
        if code == 0 and f" {vip}/" in out.decode():
            return c.instance
    return None
