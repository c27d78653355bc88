"""The timed assertions: `latency` from the request histograms, and the instants a fault sets
off, `ejection_time`, `failover_time` and `recovery_time`, from the timestamp-valued gauges the
watchers and the Locust plugin export (exact to the millisecond whatever the scrape interval).
Each is judged against the fault the assertion names, else the first one that fits."""

from __future__ import annotations

import math

from harness.observe import metrics
from harness.observe.prom import Prometheus
from harness.roles import Role, kinds_of
from harness.spec.models import Assertion
from harness.verdict import bounds, data
from harness.verdict.promql import change_by, dur, m, sel
from harness.verdict.query import Guard, Query, Scope, instances_of, nothing_to_measure
from harness.verdict.windows import FaultSpan, Span


def latency(s: Scope, a: Assertion, span: Span) -> Query:
    """Successful requests only (failures are the error budget's), from the histogram that
    counts from the intended send time under a fixed `rate:`."""
    p = a.params
    metric = (
        metrics.REQUEST_CORRECTED_DURATION.bucket
        if s.topo.load.rate
        else metrics.REQUEST_DURATION.bucket
    )
    selector = 'outcome="ok"' + (f',name="{p.request}"' if p.request else "")
    buckets = change_by(metric, "le", s.run_id, span, s.edge, selector)
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
        reads=[s.locust],
        guards=[
            Guard(f"sum({buckets})", "no successful request in this window: nothing to measure")
        ],
        adjust=beyond_top,
    )


def lbs_in_front(s: Scope, backend: str, f: FaultSpan) -> tuple[list[str], str]:
    """The LB instances that carried traffic to `backend` when the fault hit: the VIP holder
    if the LB service has a VIP, else every instance."""
    for name, svc in s.topo.services.items():
        if getattr(svc, "backends", None) == backend:
            holder = dict(f.vip_holders).get(name)
            if holder:
                return [holder], f"{holder}, the VIP holder"
            lbs = sorted(instances_of(s.topo, name))
            return lbs, ", ".join(lbs)
    return [], ""


def ejection(s: Scope, a: Assertion) -> Query:
    """The slowest of the nodes the fault hit, as the LB carrying traffic saw it."""
    p = a.params
    mine = instances_of(s.topo, p.service)
    found = s.fault_for(p.fault, lambda f: any(t in mine for t in f.targets))
    if found is None:
        return nothing_to_measure(s.tl.window("run"), f"no fault hit {p.service}")
    name, f = found
    w = s.tl.fault_window(name)
    hit = tuple(sorted(t for t in f.targets if t in mine))
    if not hit:
        return nothing_to_measure(w, f"fault {name} hit no instance of {p.service}")
    lbs, lb_note = lbs_in_front(s, p.service, f)
    servers = "|".join(hit)
    judged = Span(f.start, s.tl.load_end)  # the ejection may come after the window ends
    rng = f"[{dur(judged.seconds)}:100ms] @ {judged.end:.3f}"
    down = sel(s.run_id, m(server="=~" + servers, lb="=~" + "|".join(lbs), state="DOWN"))
    # Per (LB, server): the first DOWN that LB logged after the fault; then the slowest.
    lb_side = (
        f"min_over_time(({metrics.BACKEND_STATE.name}{down} >= {f.start:.3f}){rng}) - {f.start:.3f}"
    )
    client_side = (
        f"clamp_min(max({metrics.LAST_RESPONSE.name}"
        f"{sel(s.run_id, m(served_by='=~' + servers))} @ {w.end:.3f}) - {f.start:.3f}, 0)"
    )
    also = {"client_side": client_side}
    if any(svc.kind in kinds_of(Role.REGISTRY) for svc in s.topo.services.values()):
        # Behind gateways: the registry's own deregistration instant (the lease expired),
        # and how long after it the slowest gateway dropped the node.
        dereg = sel(s.run_id, m(server="=~" + servers, action="DELETE"))
        registry_side = (
            f"max(min_over_time(({metrics.REGISTRY_EVENT.name}{dereg} "
            f">= {f.start:.3f}){rng})) - {f.start:.3f}"
        )
        also["registry_side"] = registry_side
        also["after_registry"] = f"max({lb_side}) - ({registry_side})"
    _, bound, note = bounds.ejection(s.topo, p.service)
    max_ = bound if p.max == "auto" else float(p.max)
    bound_note = note if p.max == "auto" else ""
    if (p.side or "lb") == "client":
        return Query(
            client_side,
            max_,
            "<=",
            "s",
            w,
            reads=[s.locust],
            fail_if_none=True,
            none_means=f"no client was ever answered by {servers}",
            bound_note=bound_note,
        )
    return Query(
        lb_side,
        max_,
        "<=",
        "s",
        w,
        also=also,
        reads=[s.harness],
        fresh_span=judged,
        fail_if_none=True,
        per_series=True,
        series_label="lb,server",
        expect=tuple(f"{lb}/{server}" for lb in lbs for server in hit),
        none_means=f"{lb_note or 'the LB'} never marked it DOWN after the fault",
        bound_note=bound_note,
    )


def failover(s: Scope, a: Assertion) -> Query:
    """Complete when every client has been served again since its last failure and stays
    served to the end of the fault's window (per user, not the first lucky request)."""
    p = a.params
    mine = instances_of(s.topo, p.service)
    found = s.fault_for(
        p.fault,
        lambda f: (
            any(svc == p.service for svc, _ in f.vip_holders)
            and (f.kind == "vip_failover" or any(t in mine for t in f.targets))
        ),
    )
    if found is None:
        return nothing_to_measure(s.tl.window("run"), f"no fault hit the VIP holder of {p.service}")
    name, f = found
    w = s.tl.fault_window(name)
    old = dict(f.vip_holders).get(p.service) or ""
    served = (
        f"clamp_min(max({metrics.CLIENTS_SERVED_AGAIN.name}{sel(s.run_id)} "
        f"@ {w.end:.3f}) - {f.start:.3f}, 0)"
    )
    first = (
        f"(min_over_time(({metrics.LB_SWITCH.name}{sel(s.run_id, m(lb='!=' + old))} "
        f">= {f.start:.3f})[{dur(w.seconds)}:100ms] @ {w.end:.3f}) - {f.start:.3f})"
    )
    ka = (
        f"(min(min_over_time(({metrics.KEEPALIVED_STATE.name}"
        f"{sel(s.run_id, m(state='MASTER', lb='!=' + old))} >= {f.start:.3f})"
        f"[{dur(s.tl.load_end - f.start)}:100ms] @ {s.tl.load_end:.3f})) - {f.start:.3f})"
    )
    bound, note = bounds.failover(s.topo, p.service)
    max_ = bound if p.max == "auto" else float(p.max)
    also = {"first_success": first, "keepalived_side": ka}
    write = data.first_write(s.run_id, s.topo, p.service, f.start, s.tl.load_end)
    if write is not None:  # a data service: fault -> first write through the new primary
        also["first_write"] = write
    return Query(
        served,
        max_,
        "<=",
        "s",
        w,
        also=also,
        reads=[s.locust, s.harness],
        guards=[s.requests_guard(w)],
        fail_if_none=True,
        none_means="no client figures at the end of the window",
        bound_note=note if p.max == "auto" else "",
    )


def recovery(s: Scope, a: Assertion) -> Query:
    """From the end of the last fault to the first instant the system was steady again,
    and only if it stayed steady until the load ended: a relapse fails it."""
    last = s.tl.last_fault_end()
    span = Span(last, s.tl.load_end)
    if span.seconds <= 0:
        return nothing_to_measure(span, "the last fault ends with the load")
    run = sel(s.run_id)
    expr = f"clamp_min(({metrics.RECOVERED.name}{run} @ {span.end:.3f} > 0) - {last:.3f}, 0)"
    relapse = f"({metrics.RELAPSE.name}{run} @ {span.end:.3f} >= {last:.3f}) - {last:.3f}"

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
        reads=[s.harness],
        fail_if_none=True,
        none_means="the system was not steady again (and for good) before the load ended",
        adjust=relapsed,
    )
