"""`stale_reads` (issue 12) against a real Prometheus (tests/promlab.py): the share of a user's
read-backs of its own acknowledged order that did not find it, from the Locust plugin's counters
read at the window's edges; no read-back is no figure, never a pass."""

from __future__ import annotations

from collections.abc import Callable

from harness.spec.models import Assertion, Topology
from harness.verdict.assertions import ERROR, FAILED, PASSED, compile_query, evaluate
from harness.verdict.windows import Timeline
from tests.promlab import BASE as T0
from tests.promlab import PromLab

RUN = "r1"
END = T0 + 20
TOPO = Topology.model_validate(
    {
        "name": "t",
        "services": {
            "web": {"kind": "web", "db_reads": "replicas"},
            "redis": {"kind": "redis"},
            "mysql": {"kind": "mariadb", "replicas": 2},
        },
        "assertions": [{"stale_reads": {}}],
    }
)


def feed(lab: PromLab, checked: Callable[[float], float], stale: Callable[[float], float]) -> None:
    times = lab.scrape_times(T0 - 3, END + 3)
    lab.scrape_target("locust", "locust", RUN, [(t, 1.0) for t in times])
    for name, value in (
        ("harness_reads_checked_total", checked),
        ("harness_reads_stale_total", stale),
    ):
        lab.counter(
            name,
            {"run": RUN, "instance": "locust", "read_from": "replica"},
            [(t, value(t)) for t in times],
        )


def judge(lab: PromLab, max_ratio: float) -> object:
    lab.start()
    a = Assertion.model_validate({"stale_reads": {"max_ratio": max_ratio}})
    return evaluate(a, lab.prom, RUN, Timeline(T0, END), TOPO)


def test_stale_read_backs_over_all_read_backs_fail_a_zero_ratio(promlab: PromLab) -> None:
    # 10 read-backs a second over the run, 3 of them stale a second
    feed(promlab, lambda t: max(0.0, 10 * (t - T0)), lambda t: max(0.0, 3 * (t - T0)))
    r = judge(promlab, 0.0)
    assert r.status == FAILED  # type: ignore[attr-defined]
    assert abs(r.measured - 0.3) < 0.02  # type: ignore[attr-defined]


def test_no_stale_read_back_passes(promlab: PromLab) -> None:
    feed(promlab, lambda t: max(0.0, 10 * (t - T0)), lambda t: 0.0)
    r = judge(promlab, 0.0)
    assert (r.status, r.measured) == (PASSED, 0.0)  # type: ignore[attr-defined]


def test_no_read_back_at_all_is_inconclusive_not_a_pass(promlab: PromLab) -> None:
    feed(promlab, lambda t: 0.0, lambda t: 0.0)
    r = judge(promlab, 0.5)
    assert r.status == ERROR and "read-your-writes" in r.message  # type: ignore[attr-defined]


def test_the_query_reads_both_counters_and_the_locust_target() -> None:
    a = Assertion.model_validate({"stale_reads": {"max_ratio": 0.05}})
    q = compile_query(a, RUN, Timeline(T0, END), TOPO)
    assert (q.bound, q.op, q.unit) == (0.05, "<=", "ratio")
    assert "harness_reads_stale_total" in q.expr and "harness_reads_checked_total" in q.expr
    assert set(q.also) == {"reads_checked", "reads_stale"} and q.reads and q.guards
