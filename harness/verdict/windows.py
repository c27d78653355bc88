"""The time windows an assertion can be about: `run`, `steady` (before the first fault),
`recovery` (after the last fault) and `fault:<name>` (that fault's window)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    start: float
    end: float


@dataclass(frozen=True)
class FaultSpan(Span):
    kind: str = ""
    targets: tuple[str, ...] = ()
    windowed: bool = False  # had a `for:`; otherwise instantaneous (a kill)
    vip_holders: tuple[tuple[str, str | None], ...] = ()  # (service, holder) just before injection


@dataclass
class Timeline:
    load_start: float
    load_end: float
    faults: dict[str, FaultSpan] = field(
        default_factory=dict
    )  # by chaos step name, in injection order
    post_at: float | None = None  # when post-run measurements (writes, testinfra) were published

    def window(self, during: str) -> Span:
        if during == "run":
            return Span(self.load_start, self.load_end)
        first = min((s.start for s in self.faults.values()), default=self.load_end)
        last = max((s.end for s in self.faults.values()), default=self.load_start)
        if during == "steady":
            return Span(self.load_start, first)
        if during == "recovery":
            return Span(last, self.load_end)
        return self.fault_window(during.removeprefix("fault:"))

    def fault_window(self, name: str) -> Span:
        """A windowed fault is judged over its window; an instantaneous one (a kill) until the
        next fault or the end of the load."""
        span = self.faults[name]
        if span.windowed:
            return Span(span.start, max(span.end, span.start))
        later = [s.start for s in self.faults.values() if s.start > span.start]
        return Span(span.start, min(later, default=self.load_end))
