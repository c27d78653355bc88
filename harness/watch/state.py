"""Whether the system is steady before the first fault: the baseline's check."""

from __future__ import annotations

import time
from typing import Protocol

import httpx
from docker.models.containers import Container

from harness import kinds
from harness.errors import Inconclusive
from harness.plan.model import RunPlan
from harness.runtime.probe import vip_holder


class Scalars(Protocol):
    """What the check asks of Prometheus (harness.observe.prom.Prometheus is one): watch/ sits
    before observe/ in the layers, so it names the capability, not the class."""

    def scalar(self, expr: str, at: float | None = None) -> float | None: ...


def wait_steady(
    plan: RunPlan, prom: Scalars, containers: dict[str, Container], timeout: float = 45.0
) -> dict[str, object]:
    """Before any fault: every LB sees all its backends UP, the VIP is on its intended master,
    and requests through the load URL succeed. Otherwise the run is inconclusive."""
    deadline = time.monotonic() + timeout
    problems: list[str] = []
    # The LBs whose exporter tells each backend's state (an Nginx LB's does not).
    lbs = [(c, f) for c in plan.containers if (f := kinds.descriptor(c.kind).backends_up)]
    while time.monotonic() < deadline:
        problems = []
        for lb, backends_up in lbs:
            series = backends_up(plan.run_id, lb.instance)
            up = prom.scalar(f"sum({series})")
            total = prom.scalar(f"count({series})")
            if up is None or total is None or up < total:
                problems.append(
                    f"{lb.instance}: {0 if up is None else up:g}/{0 if total is None else total:g} backends UP"
                )
        for service in plan.vips:
            holder = vip_holder(containers, plan, service)
            nodes = [c.instance for c in plan.instances(service)]
            intended = plan.vip_owner.get(service, nodes[0])
            if holder is None or holder != (intended or holder):
                expected = intended or "any of " + ", ".join(nodes)
                problems.append(f"VIP of {service} on {holder or 'nobody'}, expected {expected}")
        ok = 0
        for _ in range(5):
            try:
                ok += httpx.get(f"{plan.load_url}/health", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                pass
        if ok < 5:
            problems.append(f"{5 - ok}/5 probes through {plan.load_url} failed")
        if not problems:
            return {"steady": True, "checked_in": round(timeout - (deadline - time.monotonic()), 2)}
        time.sleep(0.5)
    raise Inconclusive("the system was not steady before the first fault: " + "; ".join(problems))
