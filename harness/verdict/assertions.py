"""Each assertion kind compiles to PromQL over its window, evaluated with the `@` modifier, so the
journal's query reproduces the figure when pasted into Prometheus.

Nothing passes on missing data:
- every figure is trusted only once the targets it reads were scraped throughout its window
  (`fresh.check`), else the assertion is inconclusive (an error, exit 2);
- a window with nothing to measure (no request, no session started, no acknowledged write, no
  test collected, an empty `promql` result) is inconclusive, never a pass;
- counters are read at the window's edges (`promql.change`), and a counter reset makes the
  figure inconclusive.

Instants (ejection, failover, recovery) are timestamp-valued gauges exported by the watchers and
the Locust plugin, exact to the millisecond whatever the scrape interval.
"""

from __future__ import annotations

from harness.errors import InfrastructureError
from harness.observe import metrics
from harness.observe.prom import Prometheus
from harness.remote import observer
from harness.spec.models import Assertion, Topology
from harness.verdict import canary, data, fresh, instants, overload, stale
from harness.verdict.evaluation import fmt as _fmt
from harness.verdict.evaluation import judge
from harness.verdict.promql import change, sel
from harness.verdict.query import (
    ERROR,
    FAILED,
    PASSED,
    Guard,
    Query,
    Result,
    Scope,
    instances_of,
    nothing_to_measure,
    scrape_interval,
)
from harness.verdict.windows import Span, Timeline

__all__ = [
    "ERROR",
    "FAILED",
    "PASSED",
    "Compiler",
    "Guard",
    "Query",
    "Result",
    "_fmt",
    "compile_query",
    "delta",
    "evaluate",
    "instances_of",
    "scrape_interval",
]


def delta(metric: str, run_id: str, span: Span, selector: str = "") -> str:
    """A counter's change over a window, for the report's summary (1 s scrapes)."""
    return change(metric, run_id, span, fresh.edge(1.0), selector)


class Compiler(Scope):
    """Each assertion kind to its Query: the kind modules' Figures (data tier, stale reads,
    canary, overload), the timed ones (instants.py), and the counter figures below."""

    def compile(self, a: Assertion) -> Query:
        k, p = a.kind, a.params
        span = self.tl.window(a.during)
        if span.seconds <= 0:
            return nothing_to_measure(span, f"the window {a.during} is empty")
        parts = self.tl.spans(a.during)
        if not parts:
            return nothing_to_measure(span, f"the window {a.during} is empty")
        inward = a.during in ("steady", "recovery", "calm")
        if k in data.KINDS:  # the data tier's assertions (issue 12)
            hit = frozenset(t for fault in self.tl.faults.values() for t in fault.targets)
            f = data.compile(self.run_id, self.topo, self.interval, a, span, hit)
            return self.from_figure(f, span, reads=[])
        if k in stale.KINDS:  # read-your-writes from the client's side (issue 12)
            f = stale.compile(self.change, a, parts, inward)
            return self.from_figure(f, span, reads=[self.locust])
        if k in canary.KINDS:  # deploys (issue 13)
            f = canary.compile(self.run_id, self.topo, self.tl, self.edge, a)
            return self.from_figure(f, span, reads=[self.locust])
        if k in overload.KINDS:  # shed, don't stall (issue 13)
            f = overload.compile(self.run_id, self.topo, self.edge, a, span)
            return self.from_figure(f, span, reads=[self.locust])
        if k == "session_continuity":
            started = f"sum({metrics.SESSIONS_STARTED.total}{sel(self.run_id)} @ {span.end:.3f})"
            return Query(
                self.change(metrics.SESSIONS_LOST.total, parts, inward=inward),
                float(p.max_lost),
                "<=",
                "sessions",
                span,
                reads=[self.locust],
                guards=[
                    Guard(started, "no session was started: nothing to measure"),
                    self.requests_guard(parts, inward),
                ],
                also={"sessions_started": started},
            )
        if k == "error_budget":
            failures = self.change(metrics.REQUEST_FAILURES.total, parts, inward=inward)
            requests = self.change(metrics.REQUESTS.total, parts, inward=inward)
            return Query(
                f"{failures} / {requests}",
                p.max_error_ratio,
                "<=",
                "ratio",
                span,
                reads=[self.locust],
                guards=[self.requests_guard(parts, inward)],
                also={"requests": requests, "failures": failures},
            )
        if k == "latency":
            return instants.latency(self, a, span)
        if k == "ejection_time":
            return instants.ejection(self, a)
        if k == "failover_time":
            return instants.failover(self, a)
        if k == "recovery_time":
            return instants.recovery(self, a)
        at = self.tl.post_at or self.tl.load_end
        post = Span(at - self.edge, at)
        if k == "no_lost_writes":
            checked = f"{metrics.WRITES_CHECKED.name}{sel(self.run_id)} @ {at:.3f}"
            return Query(
                f"{metrics.WRITES_MISSING.name}{sel(self.run_id)} @ {at:.3f}",
                float(p.max_missing),
                "<=",
                "writes",
                Span(self.tl.load_start, at),
                also={"checked": checked},
                reads=[self.harness],
                fresh_span=post,
                guards=[Guard(checked, "no acknowledged write to check: nothing to measure")],
            )
        if k == "testinfra":
            mod = f'module="{p.module}",hosts="{p.hosts}"'  # this assertion's own series
            failed = f"{metrics.TESTINFRA_FAILED.name}{sel(self.run_id, mod)} @ {at:.3f}"
            passed = f"{metrics.TESTINFRA_PASSED.name}{sel(self.run_id, mod)} @ {at:.3f}"
            return Query(
                failed,
                0.0,
                "<=",
                "tests",
                Span(self.tl.load_end, at),
                also={"passed": passed},
                reads=[self.harness],
                fresh_span=post,
                guards=[Guard(f"{failed} + {passed}", "no test was collected: nothing to measure")],
            )
        assert a.promql is not None
        expr = a.promql.replace("$run", self.run_id)
        reads = [self.locust, self.harness] if metrics.PREFIX in expr else []
        q = Query(expr, 0.0, "<", "", span, at=span.end, reads=reads, per_series=True)
        if self.topo.runtime == "hosts":  # the user's series, if prometheus: {url}: scraped?
            q.user_reads = observer.user_instances(self.topo)
        q.none_means = "the query returned no series: nothing to measure"
        if a.between is not None:
            q.bound, q.op = (a.between[0], a.between[1]), "between"
        elif a.below is not None:
            q.bound, q.op = a.below, "<"
        else:
            q.bound, q.op = a.above, ">"
        return q


def compile_query(a: Assertion, run_id: str, tl: Timeline, topo: Topology) -> Query:
    return Compiler(run_id, tl, topo).compile(a)


def evaluate(a: Assertion, prom: Prometheus, run_id: str, tl: Timeline, topo: Topology) -> Result:
    try:
        c = Compiler(run_id, tl, topo)
        return judge(a, c.compile(a), prom, run_id, c.interval, c.edge)
    except InfrastructureError as exc:
        return Result(
            a.title, a.kind, a.during, ERROR, None, None, "", "", str(exc).splitlines()[0]
        )
