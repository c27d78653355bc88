"""The `canary` assertion (issue 13): the nodes a `deploy: {strategy: canary}` step gave the
new version against the stable ones, over the same window, per node from the `served_by`
label (the X-Served-By header each answer carries). It passes when

    canary error ratio <= stable error ratio + max_error_increase, and
    canary latency quantile (successful requests) <= max_latency_ratio x the stable one.

The figure is the error-ratio increase; the latency comparison is made by `adjust` and a
breach turns the figure into +Inf with the reason, so one assertion fails on either.

The canary nodes are the deploy's `canaries` last instances of the service (what
harness/chaos/deploy.py picks), known from the topology alone. The default window (`during:
run`) starts at the deploy step's injection: before it the canary nodes ran the stable version.
A request no node answered (`served_by="none"`: the LB's own 503, a refused connection) belongs
to neither side.

`compile` returns what `assertions.Compiler` builds its Query from (this module does not import
it: the verdict's assertions call in here, never the other way)."""

from __future__ import annotations

import math
from typing import Any

from harness.observe import metrics
from harness.observe.prom import Prometheus
from harness.spec.models import Assertion, ChaosStep, Topology
from harness.spec.semantic import instance_names
from harness.verdict.promql import change, change_by, m
from harness.verdict.query import Figure
from harness.verdict.windows import Span, Timeline, step_key

KINDS = ("canary",)


def canary_step(topo: Topology, service: str, name: str | None) -> ChaosStep | None:
    """The canary deploy step: the named one, else the first canary deploy of `service`."""
    for step in topo.chaos:
        d = step.fault.deploy
        if d is None or d.strategy != "canary" or d.service != service:
            continue
        if name is None or step_key(step.name) == step_key(name):
            return step
    return None


def split(topo: Topology, service: str, step: ChaosStep) -> tuple[list[str], list[str]]:
    """(canary nodes, stable nodes) of `service` for a canary deploy step."""
    nodes = instance_names(service, topo.services[service].replicas)
    d: Any = step.fault.deploy
    return nodes[-d.canaries :], nodes[: -d.canaries]


def compile(run_id: str, topo: Topology, tl: Timeline, edge: float, a: Assertion) -> Figure:
    p: Any = a.params
    step = canary_step(topo, p.service, p.fault)
    run = tl.window("run")
    if step is None:  # validation makes sure there is one
        return Figure("vector(0)", None, "<=", "ratio", span=run, none_means="no canary deploy")
    injected = tl.fault(step.name)
    if injected is None:
        return Figure(
            "vector(0)",
            None,
            "<=",
            "ratio",
            span=run,
            none_means=f"the canary deploy '{step.name}' never ran: nothing to measure",
        )
    span = Span(injected.start, tl.load_end) if a.during == "run" else tl.window(a.during)
    canaries, stable = split(topo, p.service, step)

    def node(nodes: list[str]) -> str:
        return m(served_by="=~" + "|".join(nodes))

    def ratio(nodes: list[str]) -> tuple[str, str]:
        fails = change(metrics.REQUEST_FAILURES.total, run_id, span, edge, node(nodes))
        reqs = change(metrics.REQUESTS.total, run_id, span, edge, node(nodes))
        return f"({fails} / {reqs})", reqs

    def quantile(nodes: list[str]) -> str:
        buckets = change_by(
            metrics.REQUEST_DURATION.bucket,
            "le",
            run_id,
            span,
            edge,
            'outcome="ok",' + node(nodes),
        )
        return f"histogram_quantile({p.quantile}, {buckets})"

    c_ratio, c_reqs = ratio(canaries)
    s_ratio, s_reqs = ratio(stable)
    c_q, s_q = quantile(canaries), quantile(stable)
    pct = f"p{p.quantile * 100:g}"

    def latency(prom: Prometheus, measured: float) -> tuple[float, str]:
        cq, sq = prom.scalar(c_q), prom.scalar(s_q)
        if cq is None or sq is None or math.isnan(cq) or math.isnan(sq):
            return math.inf, f"no {pct} for the canary or the stable nodes (no successful request)"
        bound = p.max_latency_ratio * sq
        cr, sr = prom.scalar(c_ratio), prom.scalar(s_ratio)
        errors = f"error ratio canary {cr or 0:.2%} vs stable {sr or 0:.2%}, "
        note = f"{errors}{pct} canary {cq:.3f}s vs stable {sq:.3f}s"
        if cq > bound:
            return math.inf, f"{note}: more than {p.max_latency_ratio:g}x stable ({bound:.3f}s)"
        return measured, note

    who = f"canary {', '.join(canaries)}"
    return Figure(
        f"{c_ratio} - {s_ratio}",
        p.max_error_increase,
        "<=",
        "ratio",
        span=span,
        guards=[
            (c_reqs, f"{who} answered no request in this window: nothing to measure"),
            (s_reqs, f"stable {', '.join(stable)} answered no request: nothing to measure"),
        ],
        also={
            "canary_error_ratio": c_ratio,
            "stable_error_ratio": s_ratio,
            "canary_requests": c_reqs,
            "stable_requests": s_reqs,
            f"canary_{pct}": c_q,
            f"stable_{pct}": s_q,
        },
        adjust=latency,
    )
