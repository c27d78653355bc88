"""Applies the chaos steps at their times while the load runs. Every fault is journaled before
it is injected and rolled back when its window ends, or in `rollback_all()` from the runner's
`finally` (also after an exception, SIGINT or SIGTERM)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness import chaos
from harness.chaos.base import FaultContext
from harness.journal import Journal
from harness.spec.models import ChaosStep

Notify = Callable[[str, dict[str, Any]], None]


def occurrences(steps: list[ChaosStep]) -> list[tuple[float, ChaosStep, str]]:
    """(offset, step, name) for every injection: `repeat: 3` gives `name`, `name #2`, `name #3`,
    `every` apart (default: the window plus 5 s)."""
    out = []
    for step in steps:
        every = step.every if step.every is not None else (step.for_ or 0.0) + 5.0
        for k in range(step.repeat):
            out.append(
                (step.at + k * every, step, step.name if k == 0 else f"{step.name} #{k + 1}")
            )
    return out


class Schedule:
    def __init__(
        self,
        steps: list[ChaosStep],
        ctx: FaultContext,
        journal: Journal,
        notify: Notify = lambda event, entry: None,
        snapshot: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.steps, self.ctx, self.journal, self.notify = steps, ctx, journal, notify
        self.snapshot = snapshot  # state worth recording just before a fault (e.g. VIP holders)
        self.active: list[tuple[Any, dict[str, Any], float | None]] = []  # fault, entry, end (unix)

    def _inject(self, step: ChaosStep, name: str) -> None:
        fault = chaos.make(step.fault.kind, step.fault.params, self.ctx)
        entry = self.journal.fault(
            {
                "name": name,
                "kind": fault.kind,
                "target": fault.target,
                "at": step.at,
                "for": step.for_,
                "injected_at": None,
                "rolled_back_at": None,
                "status": "scheduled",
                "detail": fault.detail,
                "before": self.snapshot(),
            }
        )
        self.journal.save()  # on disk before the fault exists
        t = time.time()
        try:
            fault.inject()
        except Exception as exc:
            entry.update(status="failed", error=str(exc))
            try:  # a partial inject (1 of 3 containers paused) must not outlive the run
                fault.rollback()
            except Exception as undo:  # noqa: BLE001 - the inject error is the one to report
                entry["rollback_error"] = str(undo)
            self.journal.save()
            raise
        entry.update(injected_at=t, status="injected")
        self.journal.save()
        self.notify("injected", entry)
        end = t + step.for_ if step.for_ is not None else None
        self.active.append((fault, entry, end))

    def _rollback(self, item: tuple[Any, dict[str, Any], float | None]) -> None:
        fault, entry, _ = item
        try:
            fault.rollback()
            entry.update(rolled_back_at=time.time(), status="rolled_back")
        except Exception as exc:  # keep rolling back the others; the error is journaled
            entry.update(status="rollback_failed", error=str(exc))
        self.journal.save()
        self.notify("rolled_back", entry)

    def run(self, t0: float, until: float, tick: Callable[[], None] = lambda: None) -> None:
        """Inject each step at t0 + at, roll back at its end; return at `until` (unix time)."""
        pending = sorted(occurrences(self.steps), key=lambda o: o[0])
        while True:
            now = time.time()
            while pending and t0 + pending[0][0] <= now:
                _, step, name = pending.pop(0)
                self._inject(step, name)
            for item in [i for i in self.active if i[2] is not None and i[2] <= now]:
                self.active.remove(item)
                self._rollback(item)
            tick()
            if now >= until:
                return
            nexts = [t0 + o[0] for o in pending[:1]] + [e for _, _, e in self.active if e] + [until]
            time.sleep(max(0.01, min(0.2, min(nexts) - time.time())))

    def rollback_all(self) -> None:
        while self.active:
            self._rollback(self.active.pop())
