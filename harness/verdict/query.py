"""What an assertion compiles to and what judging it yields, shared by every assertion kind:
a `Query` (the figure's PromQL, its bound and what must hold before it is trusted), the `Figure`
the kind modules beside this one return (a Query but for its window and what it reads), and
the `Result` the journal keeps. The statuses are the journal's words.

`Scope` is what every kind's compiler needs about the run: its id, timeline and topology, the
scrape interval and the edges it implies, and the scrape targets figures read."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.observe import metrics
from harness.observe.prom import Prometheus
from harness.roles import Role, kinds_of
from harness.spec.models import Topology
from harness.spec.semantic import instance_names
from harness.verdict import fresh
from harness.verdict.promql import change
from harness.verdict.windows import FaultSpan, Span, Timeline

PASSED, FAILED, ERROR = "passed", "failed", "error"

# A final correction of a measured figure: (Prometheus, measured) -> (figure, note)
Adjust = Callable[[Prometheus, float], tuple[float, str]]


@dataclass
class Result:
    name: str
    kind: str
    during: str
    status: str
    measured: float | None
    bound: float | None
    unit: str
    promql: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        if isinstance(d["measured"], float) and math.isinf(d["measured"]):
            d["measured"] = "+Inf"  # JSON has no infinity
        return d


@dataclass
class Guard:
    """A precondition: `expr` must be > 0, else there is nothing to measure (inconclusive)."""

    expr: str
    why: str


@dataclass
class Query:
    """One figure to fetch: `expr`, compared with `bound` by `op`; `also` are figures reported
    beside it. `per_series`: the expression yields one series per `series_label` value, each
    must hold, and every value of `expect` must be present (missing ones fail with
    `none_means`)."""

    expr: str
    bound: float | tuple[float, float] | None
    op: str  # <=, <, >, between
    unit: str
    window: Span
    also: dict[str, str] = field(default_factory=dict)
    none_means: str = "no data for this window (did the load run?)"
    fail_if_none: bool = False
    bound_note: str = ""
    at: float | None = None  # evaluation time, for expressions that cannot carry `@` themselves
    reads: list[fresh.Targets] = field(default_factory=list)
    fresh_span: Span | None = None  # default: `window`
    user_reads: list[str] = field(default_factory=list)  # the user's Prometheus's instances
    guards: list[Guard] = field(default_factory=list)
    per_series: bool = False
    series_label: str = ""
    expect: tuple[str, ...] = ()
    adjust: Adjust | None = None  # final correction


@dataclass
class Figure:
    """What a kind module (data, stale, canary, overload) compiles an assertion to: a Query's
    fields, with (expr, why) guards that must be > 0. No `bound`: nothing to measure, and
    `none_means` says why; `span`: its own window instead of the assertion's."""

    expr: str
    bound: float | None
    op: str
    unit: str
    guards: list[tuple[str, str]] = field(default_factory=list)
    also: dict[str, str] = field(default_factory=dict)
    adjust: Adjust | None = None
    span: Span | None = None
    none_means: str = ""


def nothing_to_measure(span: Span, why: str) -> Query:
    """An assertion with nothing to measure cannot be judged (an error, exit 2): the topology
    asked for a measurement its chaos or load never makes possible."""
    return Query("vector(0)", None, "<=", "s", span, none_means=f"{why}: nothing to measure")


def scrape_interval(topo: Topology) -> float:
    """The harness's Prometheus's scrape interval (the observer's), 1 s by default."""
    observers = kinds_of(Role.OBSERVER)
    return float(
        next(
            (
                getattr(s, "scrape_interval", 1.0)
                for s in topo.services.values()
                if s.kind in observers
            ),
            1.0,
        )
    )


def instances_of(topo: Topology, service: str) -> set[str]:
    svc = topo.services.get(service)
    return set(instance_names(service, svc.replicas)) if svc is not None else set()


class Scope:
    """The run an assertion is judged in, and the figures every kind builds from it."""

    def __init__(self, run_id: str, tl: Timeline, topo: Topology) -> None:
        self.run_id, self.tl, self.topo = run_id, tl, topo
        self.interval = scrape_interval(topo)
        self.edge = fresh.edge(self.interval)
        self.locust = fresh.locust(topo.load.total_workers, tl.dropped_workers)
        self.harness = fresh.harness()

    def change(
        self, metric: str, span: Span | list[Span], selector: str = "", inward: bool = False
    ) -> str:
        """A counter's growth over a window, or summed over the stretches of one (`calm`)."""
        spans = span if isinstance(span, list) else [span]
        parts = [change(metric, self.run_id, s, self.edge, selector, inward) for s in spans]
        return parts[0] if len(parts) == 1 else "(" + " + ".join(parts) + ")"

    def requests_guard(self, span: Span | list[Span], inward: bool = False) -> Guard:
        return Guard(
            self.change(metrics.REQUESTS.total, span, inward=inward),
            "no request completed in this window: nothing to measure",
        )

    def fault_for(self, name: str | None, pred: Any) -> tuple[str, FaultSpan] | None:
        """The fault called `name`, else the first one `pred` holds for."""
        if name is not None:
            f = self.tl.fault(name)
            return (name, f) if f is not None else None
        return next(((n, f) for n, f in self.tl.faults.items() if pred(f)), None)

    def from_figure(self, f: Figure, span: Span, reads: list[fresh.Targets]) -> Query:
        """The Query of a kind module's Figure, over `span` unless it has its own."""
        window = f.span or span
        if f.bound is None:
            return nothing_to_measure(window, f.none_means.removesuffix(": nothing to measure"))
        guards = [Guard(*g) for g in f.guards]
        return Query(
            f.expr,
            f.bound,
            f.op,
            f.unit,
            window,
            also=f.also,
            reads=reads,
            guards=guards,
            adjust=f.adjust,
        )
