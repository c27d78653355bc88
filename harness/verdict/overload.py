"""The `overload` assertion (issue 13): shed, don't stall. When the offered load exceeds what
the system can serve, it passes when

    accepted requests (successful answers) keep their latency: quantile < accepted_max,
    rejected requests (answers with a `reject_status`, 503/429) come fast: quantile < rejected_max,
    and few requests end any other way (timeouts, 502/504, connection errors, cut at the stop):
    stalled / requests <= max_stalled_ratio.

The figure is the accepted quantile; the rejected quantile and the stalled ratio are judged by
`adjust`, and a breach turns the figure into +Inf with the reason (as `canary` does), so one
assertion fails on any of the three. Each figure is also kept in the journal beside it.

It measures behaviour *past capacity*: a window where nothing was rejected, nothing stalled and
accepted requests kept their bound shows no overload at all, and is inconclusive (raise users or
`rate:`), never a pass. A 503 the app itself answers (a database error) counts as a rejection:
judge overload where the dependencies are healthy.

Rejections are timed by `harness_request_duration_seconds` (it has the status); accepted
requests, like `latency`, from the intended send time when `rate:` is set.

`compile` returns what `assertions.Compiler` builds its Query from (this module does not import
it: the verdict's assertions call in here, never the other way)."""

from __future__ import annotations

import math
from typing import Any

from harness.observe import metrics
from harness.observe.prom import Prometheus
from harness.spec.models import Assertion, Topology
from harness.verdict.promql import change, change_by
from harness.verdict.query import Figure
from harness.verdict.windows import Span

KINDS = ("overload",)


def _quantile(q: float, buckets: str) -> str:
    return f"histogram_quantile({q}, {buckets})"


def compile(run_id: str, topo: Topology, edge: float, a: Assertion, span: Span) -> Figure:
    p: Any = a.params
    rejected_sel = 'status=~"' + "|".join(str(s) for s in p.reject_status) + '"'
    stalled_sel = 'status!~"' + "|".join(str(s) for s in p.reject_status) + '"'
    accepted_metric = (
        metrics.REQUEST_CORRECTED_DURATION.bucket
        if topo.load.rate
        else metrics.REQUEST_DURATION.bucket
    )
    accepted_buckets = change_by(accepted_metric, "le", run_id, span, edge, 'outcome="ok"')
    rejected_buckets = change_by(
        metrics.REQUEST_DURATION.bucket, "le", run_id, span, edge, f'outcome="error",{rejected_sel}'
    )
    accepted = _quantile(p.quantile, accepted_buckets)
    rejected = _quantile(p.quantile, rejected_buckets)
    requests = change(metrics.REQUESTS.total, run_id, span, edge)
    n_rejected = change(metrics.REQUEST_FAILURES.total, run_id, span, edge, rejected_sel)
    n_stalled = change(metrics.REQUEST_FAILURES.total, run_id, span, edge, stalled_sel)
    stalled_ratio = f"{n_stalled} / {requests}"
    # past capacity: something was turned away or stalled, or accepted requests broke their bound
    overloaded = (
        f"{n_rejected} + {n_stalled} + ({accepted} >= bool {p.accepted_max:g} or vector(0))"
    )
    also = {
        "accepted_quantile": accepted,
        "rejected_quantile": rejected,
        "stalled_ratio": stalled_ratio,
        "requests": requests,
        "rejected": n_rejected,
        "stalled": n_stalled,
    }

    def shed_not_stalled(prom: Prometheus, measured: float) -> tuple[float, str]:
        q = f"p{p.quantile * 100:g}"
        rej = prom.scalar(rejected)
        stalled = prom.scalar(stalled_ratio)
        n_rej = prom.scalar(n_rejected) or 0.0
        parts = [
            f"rejected {n_rej:g}, {q} "
            + (f"{rej:.3f}s" if rej is not None and not math.isnan(rej) else "-")
            + f" (must be < {p.rejected_max:.3f}s)",
            f"stalled {stalled or 0.0:.2%} (must be <= {p.max_stalled_ratio:.2%})",
        ]
        note = "; ".join(parts)
        breaches = []
        if rej is not None and not math.isnan(rej) and rej >= p.rejected_max:
            breaches.append(f"rejections are slow: {q} {rej:.3f}s")
        if stalled is not None and stalled > p.max_stalled_ratio:
            breaches.append(f"{stalled:.2%} of requests stalled (timeouts, 502/504, no answer)")
        if breaches:
            shown = "none" if math.isinf(measured) else f"{measured:.3f}s"
            return math.inf, f"accepted {q} {shown}; {note}; " + ", ".join(breaches)
        return measured, note

    # no accepted request at all (every one turned away or stalled) is the worst case, +Inf
    return Figure(
        f"({accepted} >= 0) or vector(+Inf)",
        float(p.accepted_max),
        "<",
        "s",
        guards=[
            (requests, "no request completed in this window: nothing to measure"),
            (
                overloaded,
                "the offered load never exceeded capacity (nothing rejected or stalled, accepted "
                "requests within their bound): raise users or rate",
            ),
        ],
        also=also,
        adjust=shed_not_stalled,
    )
