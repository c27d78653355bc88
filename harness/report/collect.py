"""Figures for the summary and the plots, read back from Prometheus after the load."""

from __future__ import annotations

from typing import Any

from harness.observe import metrics
from harness.observe.prom import Prometheus
from harness.verdict.assertions import delta
from harness.verdict.windows import Timeline


def summary(prom: Prometheus, run_id: str, tl: Timeline) -> dict[str, Any]:
    span = tl.window("run")
    out: dict[str, Any] = {}
    for key, metric in (
        ("requests", metrics.REQUESTS.total),
        ("failures", metrics.REQUEST_FAILURES.total),
        ("sessions_started", metrics.SESSIONS_STARTED.total),
        ("sessions_lost", metrics.SESSIONS_LOST.total),
        ("writes_acked", metrics.WRITES_ACKED.total),
    ):
        v = prom.scalar(delta(metric, run_id, span))
        out[key] = int(v) if v is not None else None
    req, fail = out.get("requests") or 0, out.get("failures") or 0
    out["error_ratio"] = (fail / req) if req else None
    by_process = prom.query(
        f'sum by (instance) ({metrics.REQUESTS.total}{{run="{run_id}"}} @ {span.end:.3f})'
    )
    out["requests_by_process"] = {
        r["metric"].get("instance", "?"): int(float(r["value"][1])) for r in by_process
    }
    out["duration_s"] = round(span.end - span.start, 3)
    out["rps"] = round(req / out["duration_s"], 1) if out["duration_s"] > 0 else None
    return out


def _points(result: list[dict[str, Any]]) -> list[list[float]]:
    return [[float(t), float(v)] for t, v in result[0]["values"]] if result else []


def series(prom: Prometheus, run_id: str, tl: Timeline, step: float = 1.0) -> dict[str, Any]:
    start, end = tl.load_start - 2, tl.load_end + 1
    sel = f'{{run="{run_id}"}}'
    ok = f'{{run="{run_id}",outcome="ok"}}'  # latency of answered requests; failures are errors
    q = {
        "rps": f"sum(rate({metrics.REQUESTS.total}{sel}[3s]))",
        "error_rps": f"sum(rate({metrics.REQUEST_FAILURES.total}{sel}[3s])) or vector(0)",
        "p95_seconds": f"histogram_quantile(0.95, sum by (le) (rate({metrics.REQUEST_DURATION.bucket}{ok}[3s])))",
    }
    q["users"] = f'sum({metrics.USERS.name}{{run="{run_id}",role!="worker"}})'
    out: dict[str, Any] = {k: _points(prom.range(expr, start, end, step)) for k, expr in q.items()}
    backends = prom.range(
        f"sum by (served_by) (rate({metrics.REQUESTS.total}{sel}[3s]))", start, end, step
    )
    out["backend_rps"] = {
        r["metric"].get("served_by", "?"): [[float(t), float(v)] for t, v in r["values"]]
        for r in backends
    }
    out["backends_up"] = backends_up(prom, run_id, tl.load_start, end, step)  # not the boot
    return out


def backends_up(
    prom: Prometheus, run_id: str, start: float, end: float, step: float
) -> dict[str, list[list[Any]]]:
    """Per HAProxy instance, what its own exporter says of its backend servers over time:
    "all N UP", "k/N UP" or "all backends DOWN" (every client then gets the LB's own 503).
    Nginx LBs expose no per-peer state, so they have no lane."""
    servers = f'haproxy_server_status{{run="{run_id}",proxy="app",state="UP"}}'
    up = prom.range(f"sum by (instance) ({servers})", start, end, step)
    total = {
        r["metric"].get("instance", "?"): {float(t): float(v) for t, v in r["values"]}
        for r in prom.range(f"count by (instance) ({servers})", start, end, step)
    }
    out: dict[str, list[list[Any]]] = {}
    for r in up:
        lb = r["metric"].get("instance", "?")
        lane = out[lb] = []
        for t, v in r["values"]:
            n, k = total.get(lb, {}).get(float(t), 0.0), float(v)
            label = (
                "all backends DOWN" if k == 0 else f"all {n:g} UP" if k == n else f"{k:g}/{n:g} UP"
            )
            lane.append([float(t), label])
    return out


def markers(results: list[Any], tl: Timeline) -> list[dict[str, Any]]:
    """Ejection and failover instants for the report's plots."""
    out = []
    for r in results:
        if r.kind not in ("ejection_time", "failover_time", "recovery_time") or r.measured is None:
            continue
        start = r.extra.get("window", [tl.load_start])[0]
        label = {
            "ejection_time": "ejected",
            "failover_time": "failover",
            "recovery_time": "recovered",
        }[r.kind]
        kind = {
            "ejection_time": "ejection",
            "failover_time": "failover",
            "recovery_time": "recovery",
        }[r.kind]
        out.append(
            {
                "t": start + r.measured,
                "label": f"{r.name}: {label} after {r.measured:.3f}s",
                "kind": kind,
            }
        )
    return out


def step_series(
    changes: list[list[Any]], start: float, end: float, step: float = 0.25
) -> list[list[Any]]:
    """A change log [[t, value], ...] as regular samples (what the plots draw), keeping every
    change instant too so that short holds are not lost between samples."""
    if not changes:
        return []
    times = sorted(
        {round(start + i * step, 3) for i in range(int((end - start) / step) + 1)}
        | {c[0] for c in changes if start <= c[0] <= end}
    )
    out, i, current = [], 0, None
    for t in times:
        while i < len(changes) and changes[i][0] <= t:
            current = changes[i][1]
            i += 1
        if i or current is not None:
            out.append([t, current])
    return out
