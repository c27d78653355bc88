"""Decides when the system is steady again after the last fault: every LB reports all its
backends UP, every VIP is on its intended master, every container runs, and clients saw no
failure for `quiet` seconds. The instant is exported (`harness_recovered_timestamp_seconds`)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from harness.plan.model import RunPlan


class RecoveryWatcher:
    def __init__(
        self,
        plan: RunPlan,
        watchers: Any,
        exporter: Any,
        locust_metrics_url: str,
        quiet: float = 2.0,
    ) -> None:
        self.plan, self.watchers, self.exporter = plan, watchers, exporter
        self.url, self.quiet = locust_metrics_url, quiet
        self.armed_at: float | None = None
        self.recovered_at: float | None = None
        self.failures: list[tuple[float, float]] = []  # (ts, failures_total) samples
        self.last_check = 0.0
        self.why = "no fault rolled back yet"
        self.expected_down: set[str] = (
            set()
        )  # targets of instantaneous faults (a kill), left down on purpose

    def arm(self, at: float) -> None:
        """Start looking (again) after a fault window ends."""
        self.armed_at, self.recovered_at = at, None
        self.exporter.recovered.set(0)

    def _failures_total(self) -> float | None:
        try:
            text = httpx.get(self.url, timeout=1.0).text
        except httpx.HTTPError:
            return None
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("harness_request_failures_total{")
        )

    def steady_problems(self) -> list[str]:
        problems = []
        for lb, servers in self.watchers.backend_states().items():
            down = sorted(
                s for s, state in servers.items() if state != "UP" and s not in self.expected_down
            )
            if down:
                problems.append(f"{lb} reports {', '.join(down)} DOWN")
        for service, holder in self.watchers.vip_holders().items():
            alive = [
                c.instance
                for c in self.plan.instances(service)
                if c.instance not in self.expected_down
            ]
            intended = alive[0] if alive else None  # the highest-priority LB still meant to run
            if holder != intended:
                problems.append(f"VIP of {service} on {holder or 'nobody'}, not {intended}")
        stopped = [i for i in self.watchers.not_running() if i not in self.expected_down]
        if stopped:
            problems.append(f"not running: {', '.join(sorted(stopped))}")
        return problems

    def tick(self) -> None:
        now = time.time()
        if self.armed_at is None or self.recovered_at is not None or now - self.last_check < 0.25:
            return
        self.last_check = now
        total = self._failures_total()
        if total is not None:
            self.failures.append((now, total))
            self.failures = [(t, v) for t, v in self.failures if t >= now - self.quiet - 1]
        problems = self.steady_problems()
        window = [v for t, v in self.failures if t >= now - self.quiet]
        if len(window) < 2 or window[-1] > window[0] or now - self.armed_at < self.quiet:
            problems.append(f"client failures in the last {self.quiet:g}s")
        self.why = "; ".join(problems)
        if not problems:
            # steady since the start of the quiet window in which no failure happened
            self.recovered_at = max(self.armed_at, now - self.quiet)
            self.exporter.recovered.set(self.recovered_at)
