"""Each assertion kind compiles to PromQL over its window, evaluated at the window's end with
the `@` modifier, so the journal's query reproduces the figure when pasted into Prometheus.

A counter's change over [a, b] is written `(sum(c @ b) or vector(0)) - (sum(c @ a) or vector(0))`
rather than `increase(c[..])`: exact (no extrapolation) and right for a window that starts
before the first sample. Instants (ejection, failover, recovery) are timestamp-valued gauges
exported by the watchers and the Locust plugin, so they are exact to the millisecond whatever
the scrape interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.errors import InfrastructureError
from harness.observe.prom import Prometheus
from harness.spec.models import Assertion, Topology
from harness.verdict import bounds
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
        return dict(self.__dict__)


@dataclass
class Query:
    """One figure to fetch: `expr`, compared with `bound` by `op`; `also` are figures reported beside it."""

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


def sel(run_id: str, extra: str = "") -> str:
    return f'{{run="{run_id}"{"," + extra if extra else ""}}}'


def delta(metric: str, run_id: str, span: Span, selector: str = "") -> str:
    s = sel(run_id, selector)
    return f"((sum({metric}{s} @ {span.end:.3f}) or vector(0)) - (sum({metric}{s} @ {span.start:.3f}) or vector(0)))"


def _fault_for(tl: Timeline, name: str | None, pred: Any) -> tuple[str, FaultSpan] | None:
    if name is not None:
        return (name, tl.faults[name]) if name in tl.faults else None
    return next(((n, f) for n, f in tl.faults.items() if pred(f)), None)


def _regex(names: list[str]) -> str:
    return "|".join(names)


def m(**matchers: str) -> str:
    """Label matchers: m(server="=~web-1", state="DOWN") -> 'server=~"web-1",state="DOWN"'."""
    out = []
    for label, value in matchers.items():
        op = next((o for o in ("=~", "!=", "!~") if value.startswith(o)), "=")
        out.append(f'{label}{op}"{value.removeprefix(op) if op != "=" else value}"')
    return ",".join(out)


def compile_query(a: Assertion, run_id: str, tl: Timeline, topo: Topology) -> Query:
    k, p = a.kind, a.params
    span = tl.window(a.during)
    if k == "session_continuity":
        return Query(
            delta("harness_sessions_lost_total", run_id, span),
            float(p.max_lost),
            "<=",
            "sessions",
            span,
        )
    if k == "error_budget":
        failures = delta("harness_request_failures_total", run_id, span)
        requests = delta("harness_requests_total", run_id, span)
        return Query(f"{failures} / {requests}", p.max_error_ratio, "<=", "ratio", span)
    if k == "latency":
        name = f'name="{p.request}"' if p.request else ""
        w = max(1, round(span.end - span.start))
        expr = (
            f"histogram_quantile({p.quantile}, sum by (le) (increase("
            f"harness_request_duration_seconds_bucket{sel(run_id, name)}[{w}s] @ {span.end:.3f})))"
        )
        return Query(expr, p.max, "<", "s", span)
    if k == "ejection_time":
        return _ejection(a, run_id, tl, topo)
    if k == "failover_time":
        return _failover(a, run_id, tl, topo)
    if k == "recovery_time":
        last = max((f.end for f in tl.faults.values()), default=tl.load_start)
        expr = f"(harness_recovered_timestamp_seconds{sel(run_id)} @ {tl.load_end:.3f} > 0) - {last:.3f}"
        return Query(
            expr,
            p.max,
            "<=",
            "s",
            Span(last, tl.load_end),
            fail_if_none=True,
            none_means="the system was not steady again before the load ended",
        )
    at = tl.post_at or tl.load_end
    if k == "no_lost_writes":
        return Query(
            f"harness_writes_missing{sel(run_id)} @ {at:.3f}",
            float(p.max_missing),
            "<=",
            "writes",
            Span(tl.load_start, at),
            also={"checked": f"harness_writes_checked{sel(run_id)} @ {at:.3f}"},
        )
    if k == "testinfra":
        m = f'module="{p.module}"'
        return Query(
            f"harness_testinfra_failed{sel(run_id, m)} @ {at:.3f}",
            0.0,
            "<=",
            "tests",
            Span(tl.load_end, at),
            also={"passed": f"harness_testinfra_passed{sel(run_id, m)} @ {at:.3f}"},
        )
    assert a.promql is not None
    expr = a.promql.replace("$run", run_id)
    if a.between is not None:
        return Query(expr, (a.between[0], a.between[1]), "between", "", span, at=span.end)
    if a.below is not None:
        return Query(expr, a.below, "<", "", span, at=span.end)
    return Query(expr, a.above, ">", "", span, at=span.end)


def _nothing_to_measure(tl: Timeline, why: str) -> Query:
    """An instant-based assertion with no fault to measure from cannot be judged (an error,
    exit 2): the topology asked for a measurement its chaos never makes possible."""
    return Query(
        "vector(0)",
        None,
        "<=",
        "s",
        tl.window("run"),
        fail_if_none=True,
        none_means=f"{why}: nothing to measure",
    )


def _ejection(a: Assertion, run_id: str, tl: Timeline, topo: Topology) -> Query:
    p = a.params
    targets_of = {n for n in topo.services if n == p.service}
    found = _fault_for(
        tl,
        p.fault,
        lambda f: any(t.rsplit("-", 1)[0] in targets_of or t in targets_of for t in f.targets),
    )
    if found is None:
        return _nothing_to_measure(tl, f"no fault hit {p.service}")
    _, f = found
    w = tl.fault_window(next(n for n, s in tl.faults.items() if s is f))
    servers = _regex(list(f.targets))
    lb_kind, bound, note = bounds.ejection(topo, p.service)
    lb_side = (
        f"(min(harness_backend_state_timestamp_seconds{sel(run_id, m(server='=~' + servers, state='DOWN'))} "
        f"@ {w.end:.3f} >= {f.start:.3f}) - {f.start:.3f})"
    )
    client_side = (
        f"clamp_min(max(harness_last_response_timestamp_seconds{sel(run_id, m(served_by='=~' + servers + '|none'))} "
        f"@ {w.end:.3f}) - {f.start:.3f}, 0)"
    )
    side = p.side or ("lb" if lb_kind == "haproxy" else "client")
    expr, other = (lb_side, client_side) if side == "lb" else (client_side, lb_side)
    max_ = bound if p.max == "auto" else float(p.max)
    return Query(
        expr,
        max_,
        "<=",
        "s",
        w,
        also={("client_side" if side == "lb" else "lb_side"): other},
        fail_if_none=True,
        none_means=f"{'the LB never marked' if side == 'lb' else 'no client saw'} {servers} down after the fault",
        bound_note=note if p.max == "auto" else "",
    )


def _failover(a: Assertion, run_id: str, tl: Timeline, topo: Topology) -> Query:
    p = a.params
    found = _fault_for(
        tl,
        p.fault,
        lambda f: (
            any(s == p.service for s, _ in f.vip_holders)
            and (f.kind == "vip_failover" or any(t.startswith(p.service) for t in f.targets))
        ),
    )
    if found is None:
        return _nothing_to_measure(tl, f"no fault hit the VIP holder of {p.service}")
    name, f = found
    w = tl.fault_window(name)
    old = dict(f.vip_holders).get(p.service) or ""
    client = (
        f"(min_over_time((harness_lb_switch_timestamp_seconds{sel(run_id, m(lb='!=' + old))} "
        f">= {f.start:.3f})[{max(1, round(w.end - w.start))}s:100ms] @ {w.end:.3f}) - {f.start:.3f})"
    )
    ka = (
        f"(min(harness_keepalived_state_timestamp_seconds{sel(run_id, m(state='MASTER', lb='!=' + old))} "
        f"@ {w.end:.3f} >= {f.start:.3f}) - {f.start:.3f})"
    )
    bound, note = bounds.failover(topo, p.service)
    max_ = bound if p.max == "auto" else float(p.max)
    return Query(
        client,
        max_,
        "<=",
        "s",
        w,
        also={"keepalived_side": ka},
        fail_if_none=True,
        none_means=f"no successful response through another LB than {old or 'the old holder'} after the fault",
        bound_note=note if p.max == "auto" else "",
    )


def evaluate(a: Assertion, prom: Prometheus, run_id: str, tl: Timeline, topo: Topology) -> Result:
    try:
        return _evaluate(a, prom, run_id, tl, topo)
    except InfrastructureError as exc:
        return Result(
            a.title, a.kind, a.during, ERROR, None, None, "", "", str(exc).splitlines()[0]
        )


def _evaluate(a: Assertion, prom: Prometheus, run_id: str, tl: Timeline, topo: Topology) -> Result:
    q = compile_query(a, run_id, tl, topo)
    bound = q.bound if not isinstance(q.bound, tuple) else None

    def result(status: str, measured: float | None, message: str) -> Result:
        return Result(
            a.title, a.kind, a.during, status, measured, bound, q.unit, q.expr, message, extra
        )

    extra: dict[str, Any] = {"window": [q.window.start, q.window.end]}
    if q.at is not None:
        extra["evaluated_at"] = q.at
    if isinstance(q.bound, tuple):
        extra["between"] = list(q.bound)
    if q.bound_note:
        extra["bound_from_config"] = q.bound_note
    for key, expr in q.also.items():
        extra[key] = prom.scalar(expr)
        extra[f"{key}_promql"] = expr
    if q.bound is None:  # nothing to compare with: no query can settle it
        return result(ERROR, None, q.none_means)
    measured = prom.scalar(q.expr, q.at)
    if measured is None or measured != measured:  # no data, or NaN (0/0: no requests at all)
        status = FAILED if q.fail_if_none else ERROR
        return result(status, None, q.none_means)
    if isinstance(q.bound, tuple):
        ok = q.bound[0] <= measured <= q.bound[1]
        must = f"between {q.bound[0]:g} and {q.bound[1]:g}"
    else:
        ok = {"<=": measured <= q.bound, "<": measured < q.bound, ">": measured > q.bound}[q.op]
        must = f"{q.op} {_fmt(q.bound, q.unit)}"
    msg = f"{_fmt(measured, q.unit)} (must be {must}{'; bound from config: ' + q.bound_note if q.bound_note else ''})"
    side = {
        k: v
        for k, v in extra.items()
        if k in ("client_side", "lb_side", "keepalived_side", "checked", "passed") and v is not None
    }
    if side:
        msg += "; " + ", ".join(
            f"{k.replace('_', ' ')} {_fmt(v, q.unit) if k.endswith('side') else f'{v:g}'}"
            for k, v in side.items()
        )
    return result(PASSED if ok else FAILED, measured, msg)


def _fmt(v: float, unit: str) -> str:
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
