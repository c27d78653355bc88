"""Judging a compiled Query against Prometheus. Nothing passes on missing data: the figure is
trusted only once the targets it reads were scraped throughout its window (`fresh.check`), a
Locust counter reset makes it inconclusive, and so does a guard that finds nothing to measure.
What fails, fails with a message that gives the figure, its bound and the figures beside it."""

from __future__ import annotations

import math
from typing import Any

from harness.observe import metrics
from harness.observe.prom import Prometheus
from harness.spec.models import Assertion
from harness.verdict import fresh
from harness.verdict.promql import resets
from harness.verdict.query import ERROR, FAILED, PASSED, Query, Result

# figures reported beside the measured one in the message
SIDE_FIGURES = ("client_side", "first_success", "keepalived_side", "checked", "passed")


def judge(
    a: Assertion, q: Query, prom: Prometheus, run_id: str, interval: float, edge: float
) -> Result:
    """The Result of `a`, compiled to `q`, in a run scraped every `interval` seconds."""
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
    span = q.fresh_span or q.window
    stale = fresh.check(prom, run_id, q.reads, span, interval)
    stale = stale or fresh.check_user(prom, q.user_reads, span)
    if stale:
        return result(ERROR, None, f"inconclusive: {stale}")
    reads_locust = any(t.instance == fresh.LOCUST for t in q.reads)
    if reads_locust and prom.scalar(resets(metrics.REQUESTS.total, run_id, q.window, edge)):
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
        must = f"{q.op} {fmt(q.bound, q.unit)}"
    msg = f"{fmt(measured, q.unit)} (must be {must}{'; bound from config: ' + q.bound_note if q.bound_note else ''}){note}"
    side = {k: v for k, v in extra.items() if k in SIDE_FIGURES and v is not None}
    if side:
        msg += "; " + ", ".join(
            f"{k.replace('_', ' ')} {fmt(v, q.unit) if k.endswith(('side', 'success')) else f'{v:g}'}"
            for k, v in side.items()
        )
    return result(PASSED if ok else FAILED, measured, msg)


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


def _key(metric: dict[str, str], labels: str) -> str:
    """A series' name in messages: the values of `labels` ("lb,server" -> "lb-1/web-1"), or all
    its labels."""
    if labels:
        return "/".join(metric.get(label, "") for label in labels.split(","))
    shown = {k: v for k, v in metric.items() if k not in ("run", "__name__")}
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"


def fmt(v: float, unit: str) -> str:
    """A figure in its unit, as messages and the comparison of runs print it."""
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
