"""Watchers running beside the load: Docker events, LB logs (HAProxy and Nginx server state,
Keepalived transitions), VIP holders, recovery. Everything they see becomes a Prometheus series
through the harness's exporter, and a history the report draws. The Docker events stream wakes
the log and VIP watchers of a container that runs again, so they re-attach at once."""

from __future__ import annotations

from typing import Any

from docker.models.containers import Container

from harness import kinds
from harness.plan.model import RunPlan
from harness.roles import Role, kinds_of
from harness.watch.events import EventWatcher
from harness.watch.logs import LogWatcher
from harness.watch.registry import RegistryWatcher
from harness.watch.vip import VipWatcher


class Watchers:
    def __init__(
        self,
        plan: RunPlan,
        containers: dict[str, Container],
        exporter: Any,
        since: float,
        max_seconds: float,
    ) -> None:
        """`containers`: the run's live instance → container map (the stack's own, so a
        container created again under the same instance is found there)."""
        self.plan, self.containers = plan, containers
        self.events = EventWatcher(plan.run_id, exporter, since)
        self.logs = []
        for c in plan.containers:
            kind = kinds.descriptor(c.kind)  # the kinds whose log says what they did: the LBs
            if kind.log is None:
                continue
            upstreams, fail_timeout = kind.upstreams(plan, c) if kind.upstreams else ({}, {})
            self.logs.append(
                LogWatcher(
                    containers.get(c.instance),
                    c.instance,
                    exporter,
                    since,
                    upstreams=upstreams,
                    fail_timeout=fail_timeout,
                    containers=containers,
                    lines=kind.log,
                )
            )
        # Service registries (kind registry): their own (de)registration instants.
        self.logs += [
            RegistryWatcher(
                containers.get(c.instance), c.instance, exporter, since, containers=containers
            )
            for c in plan.containers
            if c.kind in kinds_of(Role.REGISTRY)
        ]
        self.vips = [
            VipWatcher(
                service,
                vip,
                containers,
                exporter,
                max_seconds,
                instances=[c.instance for c in plan.instances(service)],
            )
            for service, vip in plan.vips.items()
        ]
        self.events.listeners.append(self._on_event)

    def _on_event(self, ts: float, instance: str, action: str) -> None:
        for w in self.logs:
            if w.instance == instance and action in ("start", "unpause", "restart"):
                w.wake()
        for v in self.vips:
            v.on_event(ts, instance, action)

    def start(self) -> None:
        self.events.start()
        for w in self.logs:
            w.start()
        for v in self.vips:
            v.start()

    def stop(self) -> None:
        self.events.stop()
        for w in self.logs:
            w.stop()
        for v in self.vips:
            v.stop()

    def backend_states(self) -> dict[str, dict[str, str]]:
        """LB instance → server → UP/DOWN, as each LB (HAProxy or Nginx) last reported it."""
        return {w.instance: states for w in self.logs if (states := w.states())}

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
