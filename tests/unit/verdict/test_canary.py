"""`canary` (issue 13) against a real Prometheus (tests/promlab.py): the canary node's error
ratio and p95 against the stable nodes', per node from `served_by`, from the deploy step's
injection to the end of the load. A regressed canary fails on either; no canary traffic is no
figure, never a pass."""

from __future__ import annotations

import math
from collections.abc import Callable

from harness.spec.models import Assertion, Topology
from harness.verdict.assertions import ERROR, FAILED, PASSED, Result, compile_query, evaluate
from harness.verdict.canary import split
from harness.verdict.windows import FaultSpan, Timeline
from tests.promlab import BASE as T0
from tests.promlab import PromLab

RUN = "r1"
DEPLOY = T0 + 5  # the canary deploy is injected 5 s into the load
END = T0 + 25
LE = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "+Inf")
TOPO = Topology.model_validate(
    {
        "name": "t",
        "services": {
            "lb": {"kind": "haproxy", "backends": "web"},
            "web": {"kind": "web", "replicas": 3},
            "redis": {"kind": "redis"},
            "mysql": {"kind": "mariadb"},
        },
        "load": {"duration": "25s"},
        "chaos": [
            {
                "name": "canary v2",
                "at": "5s",
                "fault": {
                    "deploy": {
                        "service": "web",
                        "app": "v2",
                        "strategy": "canary",
                        "weight": "10%",
                    }
                },
            }
        ],
        "assertions": [{"canary": {"service": "web"}}],
    }
)
Rate = Callable[[float], float]  # requests per second at t


def grow(rate: Rate, t: float) -> float:
    """A counter's value at t for a constant rate from T0 (1 s scrapes: sum per second)."""
    return sum(rate(T0 + k) for k in range(int(max(0.0, t - T0))))


def feed(
    lab: PromLab,
    nodes: dict[str, tuple[Rate, Rate, str]],  # node -> (requests/s, failures/s, le of its p95)
) -> None:
    times = lab.scrape_times(T0 - 3, END + 3)
    lab.scrape_target("locust", "locust", RUN, [(t, 1.0) for t in times])
    for node, (reqs, fails, slow_le) in nodes.items():
        labels = {"run": RUN, "instance": "locust", "name": "/orders", "method": "POST"}
        labels |= {"status": "200", "served_by": node}
        lab.counter("harness_requests_total", labels, [(t, grow(reqs, t)) for t in times])
        lab.counter("harness_request_failures_total", labels, [(t, grow(fails, t)) for t in times])
        # 90% of its successful requests under 5 ms, the slowest 10% in the bucket `slow_le`
        hist = {"run": RUN, "instance": "locust", "name": "/orders", "status": "200"}
        hist |= {"served_by": node, "outcome": "ok"}
        samples = []
        for t in times:
            n = grow(reqs, t) - grow(fails, t)
            cum = {le: (0.9 * n if float(le) < float(slow_le) else n) for le in LE}
            samples.append((t, cum))
        lab.histogram("harness_request_duration_seconds", hist, samples)


def judge(lab: PromLab, **params: object) -> Result:
    lab.start()
    a = Assertion.model_validate({"canary": {"service": "web", **params}})
    tl = Timeline(T0, END, {"canary v2": FaultSpan(DEPLOY, DEPLOY, kind="deploy")})
    return evaluate(a, lab.prom, RUN, tl, TOPO)


def after_deploy(rate: float) -> Rate:
    return lambda t: rate if t >= DEPLOY else 0.0


def stable(rate: float) -> Rate:
    return lambda t: rate


def test_the_last_node_is_the_canary_and_the_others_are_stable() -> None:
    assert split(TOPO, "web", TOPO.chaos[0]) == (["web-3"], ["web-1", "web-2"])


def test_a_canary_failing_5_percent_of_orders_fails_against_a_clean_stable(
    promlab: PromLab,
) -> None:
    feed(
        promlab,
        {
            "web-1": (stable(45), stable(0), "0.01"),
            "web-2": (stable(45), stable(0), "0.01"),
            "web-3": (stable(10), after_deploy(0.5), "0.01"),
        },
    )
    r = judge(promlab, max_error_increase=0.005)
    assert r.status == FAILED, r.message
    assert 0.04 < r.measured < 0.06  # type: ignore[operator]  # ~5% of the canary's orders
    assert r.extra["stable_error_ratio"] == 0.0
    assert "error ratio canary" in r.message


def test_before_the_deploy_the_canary_node_ran_the_stable_version_and_does_not_count(
    promlab: PromLab,
) -> None:
    # web-3 failed a lot *before* the deploy (say, an earlier fault): not the canary's doing
    feed(
        promlab,
        {
            "web-1": (stable(45), stable(0), "0.01"),
            "web-2": (stable(45), stable(0), "0.01"),
            "web-3": (stable(10), lambda t: 5.0 if t < DEPLOY - 1 else 0.0, "0.01"),
        },
    )
    r = judge(promlab)
    assert (r.status, r.measured) == (PASSED, 0.0), r.message


def test_a_canary_as_good_as_stable_passes_within_the_allowed_increase(promlab: PromLab) -> None:
    feed(
        promlab,
        {
            "web-1": (stable(45), stable(0.09), "0.01"),  # 0.2% errors
            "web-2": (stable(45), stable(0.09), "0.01"),
            "web-3": (stable(10), stable(0.05), "0.01"),  # 0.5%: +0.3 points
        },
    )
    r = judge(promlab, max_error_increase=0.005)
    assert r.status == PASSED, r.message
    assert abs(r.measured - 0.003) < 0.001  # type: ignore[operator]


def test_a_slower_canary_fails_on_its_p95_even_without_errors(promlab: PromLab) -> None:
    feed(
        promlab,
        {
            "web-1": (stable(45), stable(0), "0.01"),
            "web-2": (stable(45), stable(0), "0.01"),
            "web-3": (stable(10), stable(0), "0.1"),  # its slowest 10% take up to 100 ms
        },
    )
    r = judge(promlab, quantile=0.95, max_latency_ratio=1.2)
    assert r.status == FAILED and r.measured == math.inf, r.message
    assert "more than 1.2x stable" in r.message
    cq, sq = r.extra["canary_p95_promql"], r.extra["stable_p95_promql"]
    assert 'served_by=~"web-3"' in cq and 'served_by=~"web-1|web-2"' in sq


def test_no_canary_traffic_is_inconclusive_not_a_pass(promlab: PromLab) -> None:
    feed(
        promlab,
        {
            "web-1": (stable(45), stable(0), "0.01"),
            "web-2": (stable(45), stable(0), "0.01"),
            "web-3": (stable(0), stable(0), "0.01"),
        },
    )
    r = judge(promlab)
    assert r.status == ERROR and "canary web-3 answered no request" in r.message


def test_a_canary_deploy_that_never_ran_is_nothing_to_measure() -> None:
    a = Assertion.model_validate({"canary": {"service": "web"}})
    q = compile_query(a, RUN, Timeline(T0, END), TOPO)
    assert q.bound is None and "never ran" in q.none_means


def test_the_window_starts_at_the_deploy_unless_during_says_otherwise() -> None:
    tl = Timeline(T0, END, {"canary v2": FaultSpan(DEPLOY, DEPLOY, kind="deploy")})
    a = Assertion.model_validate({"canary": {"service": "web"}})
    assert (compile_query(a, RUN, tl, TOPO).window.start) == DEPLOY
    b = Assertion.model_validate({"canary": {"service": "web"}, "during": "steady"})
    assert compile_query(b, RUN, tl, TOPO).window.end == DEPLOY
