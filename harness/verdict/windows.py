"""The time windows an assertion can be about: `run`, `steady` (before the first fault),
`recovery` (after the last fault) and `fault:<name>` (that fault's window)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    start: float
    end: float


@dataclass
class Timeline:
    load_start: float
    load_end: float
    faults: dict[str, Span]  # by chaos step name; instantaneous faults have start == end

    def window(self, during: str) -> Span:
        if during == "run":
            return Span(self.load_start, self.load_end)
        first = min((s.start for s in self.faults.values()), default=self.load_end)
        last = max((s.end for s in self.faults.values()), default=self.load_start)
        if during == "steady":
            return Span(self.load_start, first)
        if during == "recovery":
            return Span(last, self.load_end)
        name = during.removeprefix("fault:")
        span = self.faults[name]
        # An instantaneous fault (a kill) is judged until the next fault or the end of the load.
        later = [s.start for s in self.faults.values() if s.start > span.start]
        end = span.end if span.end > span.start else min(later, default=self.load_end)
        return Span(span.start, end)
