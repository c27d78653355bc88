"""The time windows an assertion can be about: `run`, `steady` (before the first fault),
`recovery` (after the last fault), `fault:<name>` (that fault's window; a repeated step's
later injections are `fault:<name>#2`, `fault:<name>#3`) and `calm`: every moment of the load
outside all fault windows (before, between and after them), so that an error budget over `calm`
plus one per fault window judges every moment of the run.

A windowed fault (`for:`) is judged from injection to rollback. An instantaneous one (a kill)
is judged until its own effect is over: an explicit `window:` if the step has one, otherwise
the first instant the recovery watcher saw the system steady again after it (its targets
ejected, VIPs on their masters, clients quiet), or the end of the load if it never was. It
never ends at the next step: moving an unrelated step cannot change what a fault is judged on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Span:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class FaultSpan(Span):
    kind: str = ""
    targets: tuple[str, ...] = ()  # container instances (or link names) the fault hit
    windowed: bool = False  # had a `for:`; otherwise instantaneous (a kill)
    vip_holders: tuple[tuple[str, str | None], ...] = ()  # (service, holder) just before injection
    window: float | None = None  # instantaneous: explicit `window:` (seconds)
    effect_end: float | None = None  # instantaneous: first steady instant after it, if any


def step_key(name: str) -> str:
    """`kill web #2` and `kill web#2` name the same injection."""
    return re.sub(r"\s*#(\d+)$", r"#\1", name.strip())


@dataclass
class Timeline:
    load_start: float
    load_end: float
    faults: dict[str, FaultSpan] = field(
        default_factory=dict
    )  # by chaos step name, in injection order
    post_at: float | None = None  # when post-run measurements (writes, testinfra) were published
    dropped_workers: tuple[str, ...] = ()  # Locust workers gone mid-run (load.min_workers held)

    def fault(self, name: str) -> FaultSpan | None:
        key = step_key(name)
        return next((f for n, f in self.faults.items() if step_key(n) == key), None)

    def window(self, during: str) -> Span:
        if during == "run":
            return Span(self.load_start, self.load_end)
        first = min((s.start for s in self.faults.values()), default=self.load_end)
        if during == "steady":
            return Span(self.load_start, first)
        if during == "recovery":
            return Span(self.last_fault_end(), self.load_end)
        if during == "calm":
            return Span(self.load_start, self.load_end)
        return self.fault_window(during.removeprefix("fault:"))

    def spans(self, during: str) -> list[Span]:
        """The disjoint stretches a window is made of: one, except for `calm`."""
        if during != "calm":
            return [self.window(during)]
        busy = sorted(self.fault_window(n) for n in self.faults)
        out, t = [], self.load_start
        for w in busy:
            if w.start > t:
                out.append(Span(t, w.start))
            t = max(t, w.end)
        if self.load_end > t:
            out.append(Span(t, self.load_end))
        return out

    def last_fault_end(self) -> float:
        """When the last fault was over: the rollback of a windowed one, the injection of an
        instantaneous one (what it removed stays removed; recovery is measured from there)."""
        return max((s.end for s in self.faults.values()), default=self.load_start)

    def fault_window(self, name: str) -> Span:
        span = self.fault(name)
        if span is None:
            raise KeyError(name)
        if span.windowed:
            return Span(span.start, max(span.end, span.start))
        if span.window is not None:
            end = span.start + span.window
        elif span.effect_end is not None:
            end = span.effect_end
        else:
            end = self.load_end
        return Span(span.start, min(max(end, span.start), self.load_end))
