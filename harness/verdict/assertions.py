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

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InfrastructureError
from harness.observe import metrics
from harness.observe.prom import Prometheus
from harness.roles import Role, kinds_of
from harness.spec.models import Assertion, Topology
from harness.spec.semantic import instance_names
from harness.verdict import bounds, canary, data, fresh, stale
from harness.verdict.overload import KINDS as OVERLOAD
from harness.verdict.overload import compile as overload_figure
from harness.verdict.promql import change, change_by, dur, m, resets, sel
from harness.verdict.windows import FaultSpan, Span, Timeline

PASSED, FAILED, ERROR = "passed", "failed", "error"


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
    guards: list[Guard] = field(default_factory=list)
    per_series: bool = False
    series_label: str = ""
    expect: tuple[str, ...] = ()
    adjust: Callable[[Prometheus, float], tuple[float, str]] | None = None  # final correction


def delta(metric: str, run_id: str, span: Span, selector: str = "") -> str:
    """A counter's change over a window, for the report's summary (1 s scrapes)."""
    return change(metric, run_id, span, fresh.edge(1.0), selector)


def scrape_interval(topo: Topology) -> float:
    return float(
        next(
            (
                getattr(s, "scrape_interval", 1.0)
                for s in topo.services.values()
                if s.kind == "prometheus"
            ),
            1.0,
        )
    )


def instances_of(topo: Topology, service: str) -> set[str]:
    svc = topo.services.get(service)
    return set(instance_names(service, svc.replicas)) if svc is not None else set()


def _fault_for(tl: Timeline, name: str | None, pred: Any) -> tuple[str, FaultSpan] | None:
    if name is not None:
        f = tl.fault(name)
        return (name, f) if f is not None else None
    return next(((n, f) for n, f in tl.faults.items() if pred(f)), None)


class Compiler:
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

    def requests_guard(self, span: Span) -> Guard:
        return Guard(
            self.change(metrics.REQUESTS.total, span),
            "no request completed in this window: nothing to measure",
        )

    def compile(self, a: Assertion) -> Query:
        k, p = a.kind, a.params
        span = self.tl.window(a.during)
        if span.seconds <= 0:
            return _nothing_to_measure(span, f"the window {a.during} is empty")
        parts = self.tl.spans(a.during)
        if not parts:
            return _nothing_to_measure(span, f"the window {a.during} is empty")
        inward = a.during in ("steady", "recovery", "calm")
        if k in data.KINDS:  # the data tier's assertions (issue 12)
            hit = frozenset(t for fault in self.tl.faults.values() for t in fault.targets)
            f = data.compile(self.run_id, self.topo, self.interval, a, span, hit)
            guards = [Guard(*g) for g in f.guards]
            return Query(f.expr, f.bound, f.op, f.unit, span, also=f.also, guards=guards)
        if k in stale.KINDS:  # read-your-writes from the client's side (issue 12)
            f = stale.compile(self.change, a, parts, inward)
            guards = [Guard(*g) for g in f.guards]
            return Query(
                f.expr, f.bound, f.op, f.unit, span, f.also, reads=[self.locust], guards=guards
            )
        if k in canary.KINDS:  # deploys (issue 13)
            cf = canary.compile(self.run_id, self.topo, self.tl, self.edge, a)
            if cf.bound is None:
                return _nothing_to_measure(
                    cf.span, cf.none_means.removesuffix(": nothing to measure")
                )
            guards = [Guard(*g) for g in cf.guards]
            return Query(
                cf.expr,
                cf.bound,
                cf.op,
                cf.unit,
                cf.span,
                also=cf.also,
                reads=[self.locust],
                guards=guards,
                adjust=cf.adjust,
            )
        if k in OVERLOAD:  # shed, don't stall (issue 13)
            of = overload_figure(self.run_id, self.topo, self.edge, a, span)
            guards = [Guard(*g) for g in of.guards]
            return Query(
                of.expr,
                of.bound,
                of.op,
                of.unit,
                span,
                also=of.also,
                reads=[self.locust],
                guards=guards,
                adjust=of.adjust,
            )
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
                    Guard(
                        self.change(metrics.REQUESTS.total, parts, inward=inward),
                        "no request completed in this window: nothing to measure",
                    ),
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
                guards=[Guard(requests, "no request completed in this window: nothing to measure")],
                also={"requests": requests, "failures": failures},
            )
        if k == "latency":
            return self.latency(a, span)
        if k == "ejection_time":
            return self.ejection(a)
        if k == "failover_time":
            return self.failover(a)
        if k == "recovery_time":
            return self.recovery(a)
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
            mod = f'module="{p.module}"'
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
        q.none_means = "the query returned no series: nothing to measure"
        if a.between is not None:
            q.bound, q.op = (a.between[0], a.between[1]), "between"
        elif a.below is not None:
            q.bound, q.op = a.below, "<"
        else:
            q.bound, q.op = a.above, ">"
        return q

    def latency(self, a: Assertion, span: Span) -> Query:
        """Successful requests only (failures are the error budget's), from the histogram that
        counts from the intended send time under a fixed `rate:`."""
        p = a.params
        metric = (
            metrics.REQUEST_CORRECTED_DURATION.bucket
            if self.topo.load.rate
            else metrics.REQUEST_DURATION.bucket
        )
        selector = 'outcome="ok"' + (f',name="{p.request}"' if p.request else "")
        buckets = change_by(metric, "le", self.run_id, span, self.edge, selector)
        expr = f"histogram_quantile({p.quantile}, {buckets})"
        q = p.quantile

        def beyond_top(prom: Prometheus, measured: float) -> tuple[float, str]:
            counts = {r["metric"].get("le", ""): float(r["value"][1]) for r in prom.query(buckets)}
            total = counts.pop("+Inf", 0.0)
            finite = sorted((float(le), c) for le, c in counts.items())
            if finite and q * total > finite[-1][1]:
                return math.inf, f"beyond the top bucket ({finite[-1][0]:g}s)"
            return measured, ""

        return Query(
            expr,
            p.max,
            "<",
            "s",
            span,
            reads=[self.locust],
            guards=[
                Guard(f"sum({buckets})", "no successful request in this window: nothing to measure")
            ],
            adjust=beyond_top,
        )

    def _lbs_in_front(self, backend: str, f: FaultSpan) -> tuple[list[str], str]:
        """The LB instances that carried traffic to `backend` when the fault hit: the VIP holder
        if the LB service has a VIP, else every instance."""
        for name, svc in self.topo.services.items():
            if getattr(svc, "backends", None) == backend:
                holder = dict(f.vip_holders).get(name)
                if holder:
                    return [holder], f"{holder}, the VIP holder"
                lbs = sorted(instances_of(self.topo, name))
                return lbs, ", ".join(lbs)
        return [], ""

    def ejection(self, a: Assertion) -> Query:
        """The slowest of the nodes the fault hit, as the LB carrying traffic saw it."""
        p = a.params
        mine = instances_of(self.topo, p.service)
        found = _fault_for(self.tl, p.fault, lambda f: any(t in mine for t in f.targets))
        if found is None:
            return _nothing_to_measure(self.tl.window("run"), f"no fault hit {p.service}")
        name, f = found
        w = self.tl.fault_window(name)
        hit = tuple(sorted(t for t in f.targets if t in mine))
        if not hit:
            return _nothing_to_measure(w, f"fault {name} hit no instance of {p.service}")
        lbs, lb_note = self._lbs_in_front(p.service, f)
        servers = "|".join(hit)
        judged = Span(f.start, self.tl.load_end)  # the ejection may come after the window ends
        rng = f"[{dur(judged.seconds)}:100ms] @ {judged.end:.3f}"
        down = sel(self.run_id, m(server="=~" + servers, lb="=~" + "|".join(lbs), state="DOWN"))
        # Per (LB, server): the first DOWN that LB logged after the fault; then the slowest.
        lb_side = (
            f"min_over_time(({metrics.BACKEND_STATE.name}{down} "
            f">= {f.start:.3f}){rng}) - {f.start:.3f}"
        )
        client_side = (
            f"clamp_min(max({metrics.LAST_RESPONSE.name}"
            f"{sel(self.run_id, m(served_by='=~' + servers))} @ {w.end:.3f}) - {f.start:.3f}, 0)"
        )
        also = {"client_side": client_side}
        if any(s.kind in kinds_of(Role.REGISTRY) for s in self.topo.services.values()):
            # Behind gateways: the registry's own deregistration instant (the lease expired),
            # and how long after it the slowest gateway dropped the node.
            dereg = sel(self.run_id, m(server="=~" + servers, action="DELETE"))
            registry_side = (
                f"max(min_over_time(({metrics.REGISTRY_EVENT.name}{dereg} "
                f">= {f.start:.3f}){rng})) - {f.start:.3f}"
            )
            also["registry_side"] = registry_side
            also["after_registry"] = f"max({lb_side}) - ({registry_side})"
        side = p.side or "lb"
        _, bound, note = bounds.ejection(self.topo, p.service)
        max_ = bound if p.max == "auto" else float(p.max)
        if side == "client":
            return Query(
                client_side,
                max_,
                "<=",
                "s",
                w,
                reads=[self.locust],
                fail_if_none=True,
                none_means=f"no client was ever answered by {servers}",
                bound_note=note if p.max == "auto" else "",
            )
        return Query(
            lb_side,
            max_,
            "<=",
            "s",
            w,
            also=also,
            reads=[self.harness],
            fresh_span=judged,
            fail_if_none=True,
            per_series=True,
            series_label="lb,server",
            expect=tuple(f"{lb}/{server}" for lb in lbs for server in hit),
            none_means=f"{lb_note or 'the LB'} never marked it DOWN after the fault",
            bound_note=note if p.max == "auto" else "",
        )

    def failover(self, a: Assertion) -> Query:
        """Complete when every client has been served again since its last failure and stays
        served to the end of the fault's window (per user, not the first lucky request)."""
        p = a.params
        mine = instances_of(self.topo, p.service)
        found = _fault_for(
            self.tl,
            p.fault,
            lambda f: (
                any(s == p.service for s, _ in f.vip_holders)
                and (f.kind == "vip_failover" or any(t in mine for t in f.targets))
            ),
        )
        if found is None:
            return _nothing_to_measure(
                self.tl.window("run"), f"no fault hit the VIP holder of {p.service}"
            )
        name, f = found
        w = self.tl.fault_window(name)
        old = dict(f.vip_holders).get(p.service) or ""
        served = (
            f"clamp_min(max({metrics.CLIENTS_SERVED_AGAIN.name}{sel(self.run_id)} "
            f"@ {w.end:.3f}) - {f.start:.3f}, 0)"
        )
        first = (
            f"(min_over_time(({metrics.LB_SWITCH.name}{sel(self.run_id, m(lb='!=' + old))} "
            f">= {f.start:.3f})[{dur(w.seconds)}:100ms] @ {w.end:.3f}) - {f.start:.3f})"
        )
        ka = (
            f"(min(min_over_time(({metrics.KEEPALIVED_STATE.name}"
            f"{sel(self.run_id, m(state='MASTER', lb='!=' + old))} >= {f.start:.3f})"
            f"[{dur(self.tl.load_end - f.start)}:100ms] @ {self.tl.load_end:.3f})) - {f.start:.3f})"
        )
        bound, note = bounds.failover(self.topo, p.service)
        max_ = bound if p.max == "auto" else float(p.max)
        also = {"first_success": first, "keepalived_side": ka}
        write = data.first_write(self.run_id, self.topo, p.service, f.start, self.tl.load_end)
        if write is not None:  # a data service: fault -> first write through the new primary
            also["first_write"] = write
        return Query(
            served,
            max_,
            "<=",
            "s",
            w,
            also=also,
            reads=[self.locust, self.harness],
            guards=[self.requests_guard(w)],
            fail_if_none=True,
            none_means="no client figures at the end of the window",
            bound_note=note if p.max == "auto" else "",
        )

    def recovery(self, a: Assertion) -> Query:
        """From the end of the last fault to the first instant the system was steady again,
        and only if it stayed steady until the load ended: a relapse fails it."""
        last = self.tl.last_fault_end()
        span = Span(last, self.tl.load_end)
        if span.seconds <= 0:
            return _nothing_to_measure(span, "the last fault ends with the load")
        s = sel(self.run_id)
        expr = f"clamp_min(({metrics.RECOVERED.name}{s} @ {span.end:.3f} > 0) - {last:.3f}, 0)"
        relapse = f"({metrics.RELAPSE.name}{s} @ {span.end:.3f} >= {last:.3f}) - {last:.3f}"

        def relapsed(prom: Prometheus, measured: float) -> tuple[float, str]:
            r = prom.scalar(relapse)
            if r is not None:
                return math.inf, f"relapsed {r:.3f}s after the last fault, and it must stay steady"
            return measured, ""

        return Query(
            expr,
            a.params.max,
            "<=",
            "s",
            span,
            reads=[self.harness],
            fail_if_none=True,
            none_means="the system was not steady again (and for good) before the load ended",
            adjust=relapsed,
        )


def compile_query(a: Assertion, run_id: str, tl: Timeline, topo: Topology) -> Query:
    return Compiler(run_id, tl, topo).compile(a)


def _nothing_to_measure(span: Span, why: str) -> Query:
    """An assertion with nothing to measure cannot be judged (an error, exit 2): the topology
    asked for a measurement its chaos or load never makes possible."""
    return Query("vector(0)", None, "<=", "s", span, none_means=f"{why}: nothing to measure")


def evaluate(a: Assertion, prom: Prometheus, run_id: str, tl: Timeline, topo: Topology) -> Result:
    try:
        return _evaluate(a, prom, run_id, tl, topo)
    except InfrastructureError as exc:
        return Result(
            a.title, a.kind, a.during, ERROR, None, None, "", "", str(exc).splitlines()[0]
        )


def _holds(q: Query, v: float) -> bool:
    if isinstance(q.bound, tuple):
        return q.bound[0] <= v <= q.bound[1]
    assert q.bound is not None
    if math.isnan(v):
        return False
    return {"<=": v <= q.bound, "<": v < q.bound, ">": v > q.bound}[q.op]


def _worst(q: Query, values: list[float]) -> float:
    if q.op == ">":
        return min(values)
    if isinstance(q.bound, tuple):
        lo, hi = q.bound
        return max(values, key=lambda v: max(lo - v, v - hi))
    return max(values)


def _evaluate(a: Assertion, prom: Prometheus, run_id: str, tl: Timeline, topo: Topology) -> Result:
    c = Compiler(run_id, tl, topo)
    q = c.compile(a)
    bound = q.bound if not isinstance(q.bound, tuple) else None
    extra: dict[str, Any] = {"window": [q.window.start, q.window.end], "op": q.op}

    def result(status: str, measured: float | None, message: str) -> Result:
        return Result(
            a.title, a.kind, a.during, status, measured, bound, q.unit, q.expr, message, extra
        )

    if q.at is not None:
        extra["evaluated_at"] = q.at
    if isinstance(q.bound, tuple):
        extra["between"] = list(q.bound)
    if q.bound_note:
        extra["bound_from_config"] = q.bound_note
    if q.bound is None:  # nothing to compare with: no query can settle it
        return result(ERROR, None, q.none_means)
    stale = fresh.check(prom, run_id, q.reads, q.fresh_span or q.window, c.interval)
    if stale:
        return result(ERROR, None, f"inconclusive: {stale}")
    reads_locust = any(t.instance == fresh.LOCUST for t in q.reads)
    if reads_locust and prom.scalar(resets(metrics.REQUESTS.total, run_id, q.window, c.edge)):
        return result(
            ERROR, None, "inconclusive: a Locust process restarted (counter reset) in the window"
        )
    for g in q.guards:
        v = prom.scalar(g.expr)
        if v is None or v != v or v <= 0:
            extra["guard_promql"] = g.expr
            return result(ERROR, None, g.why)
    for key, expr in q.also.items():
        extra[key] = prom.scalar(expr)
        extra[f"{key}_promql"] = expr
    if q.per_series:
        rows = prom.query(q.expr, q.at)
        values = {_key(r["metric"], q.series_label): float(r["value"][1]) for r in rows}
        missing = [e for e in q.expect if e not in values]
        if missing:
            return result(FAILED, None, f"{', '.join(missing)}: {q.none_means}")
        if not values:
            return result(FAILED if q.fail_if_none else ERROR, None, q.none_means)
        extra["series"] = values
        measured = _worst(q, list(values.values()))
        bad = sorted(k for k, v in values.items() if not _holds(q, v))
        note = f"; fails for {', '.join(bad)}" if bad and len(values) > 1 else ""
    else:
        got = prom.scalar(q.expr, q.at)
        if got is None or got != got:  # no data, or NaN (0/0: no requests at all)
            return result(FAILED if q.fail_if_none else ERROR, None, q.none_means)
        measured, note = got, ""
    if q.adjust is not None:
        measured, why = q.adjust(prom, measured)
        note += f"; {why}" if why else ""
    ok = _holds(q, measured)
    if isinstance(q.bound, tuple):
        must = f"between {q.bound[0]:g} and {q.bound[1]:g}"
    else:
        must = f"{q.op} {_fmt(q.bound, q.unit)}"
    msg = f"{_fmt(measured, q.unit)} (must be {must}{'; bound from config: ' + q.bound_note if q.bound_note else ''}){note}"
    side = {
        k: v
        for k, v in extra.items()
        if k in ("client_side", "first_success", "keepalived_side", "checked", "passed")
        and v is not None
    }
    if side:
        msg += "; " + ", ".join(
            f"{k.replace('_', ' ')} {_fmt(v, q.unit) if k.endswith(('side', 'success')) else f'{v:g}'}"
            for k, v in side.items()
        )
    return result(PASSED if ok else FAILED, measured, msg)


def _key(metric: dict[str, str], labels: str) -> str:
    """A series' name in messages: the values of `labels` ("lb,server" -> "lb-1/web-1"), or all
    its labels."""
    if labels:
        return "/".join(metric.get(label, "") for label in labels.split(","))
    shown = {k: v for k, v in metric.items() if k not in ("run", "__name__")}
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"


def _fmt(v: float, unit: str) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if unit == "ratio":
        return f"{v:.4%}"
    if unit == "sessions":
        return f"{v:g} sessions lost"
    if unit == "s":
        return f"{v:.3f}s"
    if unit == "writes":
        return f"{v:g} missing"
    if unit == "tests":
        return f"{v:g} failed"
    return f"{v:g}"
