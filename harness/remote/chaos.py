"""The chaos steps of a `runtime: hosts` topology, applied on schedule over SSH.

Each fault is journaled (`scheduled`, with its inject and undo commands) before its first
command runs, marked `injected` once applied and `rolled_back` once undone: windowed steps
(`for:`) at the end of their window, the others when the schedule ends, and all of them in
`finally` on an error, Ctrl-C or SIGTERM. After a SIGKILL, `harness gc` runs the journaled undo
commands (harness/chaos/recover.py hands host faults to `faults.recover`)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from harness.errors import HarnessError, InfrastructureError
from harness.journal import Journal
from harness.remote.faults import HostFault, build
from harness.remote.relay import Relays
from harness.remote.shell import Shell
from harness.remote.targets import Host
from harness.spec.models import ChaosStep, Topology, injection_name


def occurrences(topo: Topology) -> list[tuple[float, str, ChaosStep]]:
    """(at, injection name, step) for every injection, in time order."""
    out = []
    for step in topo.chaos:
        every = step.every if step.every is not None else (step.for_ or 0) + 5
        for k in range(1, step.repeat + 1):
            out.append((step.at + (k - 1) * every, injection_name(step.name, k), step))
    return sorted(out, key=lambda o: o[0])


class HostChaos:
    def __init__(
        self,
        topo: Topology,
        hosts: dict[str, Host],
        shell: Shell,
        journal: Journal | None,
        run_id: str,
        say: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        notify: Callable[[str, dict[str, Any]], None] = lambda what, entry: None,
        snapshot: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        """`notify(status, entry)` is told each injection and rollback (a run's events);
        `snapshot()` is state worth journaling just before a fault (the VIP holders)."""
        self.topo, self.hosts, self.shell, self.journal = topo, hosts, shell, journal
        self.run_id, self.say, self.sleep = run_id, say, sleep
        self.notify, self.snapshot = notify, snapshot
        self.relays = Relays(topo.seed)  # latency via the harness's Toxiproxy, when asked
        self.rng = random.Random(topo.seed)
        self.active: list[tuple[HostFault, dict[str, Any], float | None]] = []

    def _entry(self, f: HostFault, step: ChaosStep) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": f.name,
            "kind": f.kind,
            "runtime": "hosts",
            "target": ",".join(f.targets),
            "for": step.for_,
            "status": "scheduled",
            "scheduled_at": time.time(),
            "injected_at": None,
            "rolled_back_at": None,
            "detail": f.detail(),
            "before": self.snapshot(),
        }
        if f.note:
            entry["note"] = f.note
        if self.journal is not None:
            self.journal.fault(entry)
        return entry

    def _save(self) -> None:
        if self.journal is not None:
            self.journal.save()

    def inject(self, name: str, step: ChaosStep) -> HostFault:
        fault = build(step, self.topo, self.hosts, self.shell, self.run_id, self.rng, self.relays)
        fault.name = name
        entry = self._entry(fault, step)
        until = time.monotonic() + step.for_ if step.for_ is not None else None
        self.active.append((fault, entry, until))
        try:
            fault.apply(self.shell)
        except HarnessError as exc:
            entry.update(status="failed", error=str(exc))
            self._save()
            raise
        entry.update(status="injected", injected_at=time.time())
        self._save()
        self.notify("injected", entry)
        self.say(
            f"fault: {name}: {fault.kind} on {', '.join(fault.targets)}"
            + (f" ({fault.note})" if fault.note else "")
        )
        return fault

    def rollback(self, fault: HostFault, entry: dict[str, Any]) -> list[str]:
        failed = fault.undo(self.shell)
        for name in fault.relays:
            self.relays.calm(name)
        entry.update(
            status="rollback_failed" if failed else "rolled_back", rolled_back_at=time.time()
        )
        if failed:
            entry["rollback_errors"] = failed
        self._save()
        self.notify("rolled_back", entry)
        self.say(
            f"rolled back: {fault.name}" + (f" (FAILED: {'; '.join(failed)})" if failed else "")
        )
        return failed

    def _due(self, now: float) -> None:
        for item in [a for a in self.active if a[2] is not None and a[2] <= now]:
            self.active.remove(item)
            if item[1]["status"] == "injected":
                self.rollback(item[0], item[1])

    def run(
        self, duration: float, tick: Callable[[], None] = lambda: None, *, undo: bool = True
    ) -> None:
        """The whole schedule over `duration` seconds, then every fault undone (`undo=False`:
        the faults still on stay on for the caller to undo, as a run does once Locust has
        stopped sending; on an error they are undone here all the same). `tick` is called
        every 0.1 s (a run checks its load is alive there)."""
        t0 = time.monotonic()
        try:
            for at, name, step in occurrences(self.topo):
                while time.monotonic() < t0 + at:
                    self._due(time.monotonic())
                    tick()
                    self.sleep(min(0.1, max(0.0, t0 + at - time.monotonic())))
                self.inject(name, step)
            while time.monotonic() < t0 + duration:
                self._due(time.monotonic())
                tick()
                self.sleep(0.1)
        except BaseException:
            self.rollback_all()
            raise
        if undo:
            self.rollback_all()

    def close(self) -> None:
        """The relays stop (the connections they carried end): when the load is over."""
        self.relays.close()

    def rollback_all(self) -> list[str]:
        failed: list[str] = []
        while self.active:
            fault, entry, _ = self.active.pop()
            if entry["status"] in ("injected", "failed", "scheduled"):
                failed += self.rollback(fault, entry)
        if failed:
            raise InfrastructureError(f"rollback failed on a host: {'; '.join(failed)}")
        return failed
