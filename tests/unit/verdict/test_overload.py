"""`overload` (issue 13) against a real Prometheus (tests/promlab.py): past capacity, rejected
requests (503/429) must come fast, accepted ones keep their latency bound, and few may stall
(timeouts, 502/504, no answer); a window that shows no overload at all is inconclusive."""

from __future__ import annotations

import math

from harness.spec.models import Assertion, Topology
from harness.verdict.assertions import ERROR, FAILED, PASSED, Result, compile_query, evaluate
from harness.verdict.windows import Timeline
from tests.promlab import BASE as T0
from tests.promlab import PromLab

RUN = "r1"
END = T0 + 20
BOUNDS = ("0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "+Inf")


def topo(rate: float | None = None) -> Topology:
    load = {"locustfile": "locustfiles/overload_user.py", "users": 80}
    if rate:
        load["rate"] = rate  # type: ignore[assignment]
    return Topology.model_validate(
        {
            "name": "t",
            "services": {
                "lb": {"kind": "haproxy", "backends": "web"},
                "web": {"kind": "web", "sessions": "files"},
                "mysql": {"kind": "mariadb"},
            },
            "load": load,
            "assertions": [{"overload": {"accepted_max": 0.5, "rejected_max": 0.25}}],
        }
    )


# (status, outcome, requests a second, the duration every one of them takes)
Traffic = list[tuple[str, str, float, float]]


def feed(lab: PromLab, traffic: Traffic) -> None:
    times = lab.scrape_times(T0 - 3, END + 3)
    lab.scrape_target("locust", "locust", RUN, [(t, 1.0) for t in times])
    for status, outcome, per_s, took in traffic:
        labels = {"run": RUN, "instance": "locust", "name": "/work", "served_by": "web"}
        labels["status"] = status

        def n(t: float, per_s: float = per_s) -> float:
            return max(0.0, per_s * (min(t, END) - T0))

        lab.counter(
            "harness_requests_total", {**labels, "method": "GET"}, [(t, n(t)) for t in times]
        )
        if outcome == "error":
            lab.counter(
                "harness_request_failures_total",
                {**labels, "method": "GET"},
                [(t, n(t)) for t in times],
            )
        lab.histogram(
            "harness_request_duration_seconds",
            {**labels, "outcome": outcome},
            [(t, {le: n(t) if float(le) >= took else 0.0 for le in BOUNDS}) for t in times],
        )


def judge(lab: PromLab, traffic: Traffic, **bounds: float) -> Result:
    feed(lab, traffic)
    lab.start()
    params = {"accepted_max": 0.5, "rejected_max": 0.25, **bounds}
    a = Assertion.model_validate({"overload": params})
    return evaluate(a, lab.prom, RUN, Timeline(T0, END), topo())


def test_limits_that_reject_fast_and_keep_accepted_requests_fast_pass(promlab: PromLab) -> None:
    # 20/s served in 100 ms, 60/s turned away with a 503 after ~100 ms in HAProxy's queue
    r = judge(promlab, [("200", "ok", 20, 0.09), ("503", "error", 60, 0.09)])
    assert r.status == PASSED, r.message
    assert r.measured is not None and 0.05 < r.measured <= 0.1
    assert "rejected 1200" in r.message and "stalled 0.00%" in r.message
    assert 0.05 < r.extra["rejected_quantile"] <= 0.1 and r.extra["stalled_ratio"] == 0


def test_no_limits_every_request_slows_into_timeouts_fails(promlab: PromLab) -> None:
    # a few answers after 2 s, the rest 504 from the LB's server timeout or cut off
    r = judge(promlab, [("200", "ok", 5, 1.8), ("504", "error", 60, 2.2), ("0", "error", 15, 4.0)])
    assert r.status == FAILED
    assert r.measured == math.inf and "stalled" in r.message
    assert 1.0 < r.extra["accepted_quantile"] <= 2.5 and r.extra["stalled_ratio"] > 0.9


def test_slow_accepted_requests_fail_on_the_figure_itself(promlab: PromLab) -> None:
    r = judge(promlab, [("200", "ok", 20, 0.8), ("503", "error", 60, 0.04)])
    assert r.status == FAILED and r.measured is not None and 0.5 < r.measured <= 1.0


def test_rejections_that_wait_in_a_queue_first_fail(promlab: PromLab) -> None:
    # accepted fast, but the 503 only comes after 2 s in the queue: a stall with a polite ending
    r = judge(promlab, [("200", "ok", 20, 0.09), ("503", "error", 60, 2.0)])
    assert r.status == FAILED and r.measured == math.inf
    assert "rejections are slow" in r.message and r.extra["accepted_quantile"] <= 0.1


def test_a_429_counts_as_a_rejection_and_the_stalled_share_has_a_budget(promlab: PromLab) -> None:
    traffic = [("200", "ok", 20, 0.09), ("429", "error", 58, 0.001), ("502", "error", 2, 0.01)]
    assert judge(promlab, traffic, max_stalled_ratio=0.05).status == PASSED


def test_nothing_accepted_at_all_fails_rather_than_measuring_nothing(promlab: PromLab) -> None:
    r = judge(promlab, [("504", "error", 40, 2.2)])
    assert r.status == FAILED and r.measured == math.inf


def test_a_window_below_capacity_is_inconclusive_not_a_pass(promlab: PromLab) -> None:
    r = judge(promlab, [("200", "ok", 20, 0.09)])
    assert r.status == ERROR and "never exceeded capacity" in r.message


def test_under_a_fixed_rate_accepted_latency_counts_from_the_intended_send_time() -> None:
    a = Assertion.model_validate({"overload": {"accepted_max": 0.5, "rejected_max": 0.1}})
    q = compile_query(a, RUN, Timeline(T0, END), topo(rate=1))
    assert "harness_request_corrected_duration_seconds_bucket" in q.expr
    rejected = q.also["rejected_quantile"]
    assert (
        'harness_request_duration_seconds_bucket{run="r1",outcome="error",status=~"503|429"}'
        in rejected
    )
    assert (q.bound, q.op, q.unit) == (0.5, "<", "s") and q.reads and q.adjust
