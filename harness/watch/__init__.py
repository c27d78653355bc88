"""Watchers running beside the load: Docker events, LB logs (HAProxy server state, Keepalived
transitions), VIP holders, recovery. Everything they see becomes a Prometheus series through
the harness's exporter, and a history the report draws."""

from __future__ import annotations

from typing import Any

from docker.models.containers import Container

from harness.plan.model import RunPlan
from harness.watch.events import EventWatcher
from harness.watch.logs import LogWatcher
from harness.watch.vip import VipWatcher

LB_KINDS = ("haproxy", "nginx-lb")


class Watchers:
    def __init__(
        self,
        plan: RunPlan,
        containers: dict[str, Container],
        exporter: Any,
        since: float,
        max_seconds: float,
    ) -> None:
        self.plan, self.containers = plan, containers
        self.events = EventWatcher(plan.run_id, exporter, since)
        self.logs = [
            LogWatcher(containers[c.instance], c.instance, exporter, since)
            for c in plan.containers
            if c.kind in LB_KINDS
        ]
        self.vips = [
            VipWatcher(
                service,
                vip,
                {c.instance: containers[c.instance] for c in plan.instances(service)},
                exporter,
                max_seconds,
            )
            for service, vip in plan.vips.items()
        ]

    def start(self) -> None:
        self.events.start()
        for w in self.logs:
            w.start()
        for v in self.vips:
            v.start()

    def stop(self) -> None:
        self.events.stop()

    def backend_states(self) -> dict[str, dict[str, str]]:
        return {w.instance: dict(w.servers) for w in self.logs if w.servers}

    def vip_holders(self) -> dict[str, str | None]:
        return {v.service: v.holder() for v in self.vips}

    def not_running(self) -> list[str]:
        last: dict[str, str] = {}
        for _, instance, action in sorted(self.events.events):
            last[instance] = action
        return [i for i, a in last.items() if a in ("die", "pause", "stop", "kill", "oom")]

    def history(self) -> dict[str, Any]:
        """For the journal and the report."""
        return {
            "vip_holder": {v.service: [[t, h] for t, h in v.history] for v in self.vips},
            "container_events": [[t, i, a] for t, i, a in sorted(self.events.events)],
            "lb_events": sorted(
                [
                    [t, w.instance, what, name, state]
                    for w in self.logs
                    for t, what, name, state in w.events
                ]
            ),
        }
