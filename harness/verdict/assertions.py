"""Each assertion kind compiles to one PromQL expression over its window, evaluated at the
window's end with the `@` modifier, so the journal's query reproduces the figure exactly when
pasted into Prometheus.

A counter's change over [a, b] is written `(sum(c @ b) or vector(0)) - (sum(c @ a) or vector(0))`
rather than `increase(c[..])`: it is exact (no extrapolation) and also right for a window that
starts before the first sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.observe.prom import Prometheus
from harness.spec.models import Assertion
from harness.verdict.windows import Span, Timeline

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

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def delta(metric: str, run_id: str, span: Span, selector: str = "") -> str:
    sel = f'{{run="{run_id}"{"," + selector if selector else ""}}}'
    return f"((sum({metric}{sel} @ {span.end:.3f}) or vector(0)) - (sum({metric}{sel} @ {span.start:.3f}) or vector(0)))"


def compile_promql(a: Assertion, run_id: str, span: Span) -> tuple[str, float | None, str, str]:
    """Return (expr, bound, unit, comparison) for an assertion over `span`."""
    if a.session_continuity is not None:
        return delta("harness_sessions_lost_total", run_id, span), float(a.session_continuity.max_lost), "sessions", "<="
    if a.error_budget is not None:
        failures = delta("harness_request_failures_total", run_id, span)
        requests = delta("harness_requests_total", run_id, span)
        return f"{failures} / {requests}", a.error_budget.max_error_ratio, "ratio", "<="
    assert a.promql is not None
    expr = a.promql.replace("$run", run_id)
    expr = f"({expr}) @ {span.end:.3f}" if "@" not in expr else expr
    if a.below is not None:
        return expr, a.below, "", "<"
    return expr, a.above, "", ">"


def evaluate(a: Assertion, prom: Prometheus, run_id: str, timeline: Timeline) -> Result:
    span = timeline.window(a.during)
    expr, bound, unit, op = compile_promql(a, run_id, span)
    base = dict(name=a.title, kind=a.kind, during=a.during, bound=bound, unit=unit, promql=expr)
    measured = prom.scalar(expr)
    if measured is None or measured != measured:  # no data, or NaN (0/0: no requests at all)
        return Result(**base, status=ERROR, measured=None, message="no data for this window (did the load run?)")  # type: ignore[arg-type]
    assert bound is not None
    ok = {"<=": measured <= bound, "<": measured < bound, ">": measured > bound}[op]
    msg = f"{_fmt(measured, unit)} (must be {op} {_fmt(bound, unit)})"
    return Result(**base, status=PASSED if ok else FAILED, measured=measured, message=msg)  # type: ignore[arg-type]


def _fmt(v: float, unit: str) -> str:
    if unit == "ratio":
        return f"{v:.4%}"
    if unit == "sessions":
        return f"{v:g} sessions lost"
    if unit == "s":
        return f"{v:.3f}s"
    return f"{v:g}"
