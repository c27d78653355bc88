"""Every assertion kind's compiled PromQL, evaluated by a real Prometheus (Debian's 2.42, on
loopback, tests/promlab.py) over synthetic series shaped like the harness's own: gaps, failed
scrapes, counter resets, late first samples. Each case that used to pass a broken system is
here and must not pass it again."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.errors import InfrastructureError
from harness.runner import fault_targets
from harness.spec.models import Assertion, Topology
from harness.verdict.assertions import ERROR, FAILED, PASSED, Result, evaluate
from harness.verdict.compare import compare
from harness.verdict.windows import FaultSpan, Span, Timeline
from tests.fakes import FakeProm
from tests.promlab import BASE as T0
from tests.promlab import PromLab, missing_binaries

RUN = "r1"
TOPO = Topology.model_validate({
    "name": "t",
    "services": {
        "lb": {"kind": "haproxy", "replicas": 2, "backends": "web", "keepalived": {"advert_int": "1s"},
               "check": {"interval": "500ms", "fall": 2, "timeout": "1s"}},
        "web": {"kind": "web", "replicas": 3},
        "redis": {"kind": "redis"}, "mysql": {"kind": "mariadb"},
    },
    "assertions": [{"session_continuity": {}}],
})
END = T0 + 40
TL = Timeline(T0, END, {
    "kill web-1": FaultSpan(T0 + 10, T0 + 10, kind="kill", targets=("web-1",),
                            vip_holders=(("lb", "lb-1"),), effect_end=T0 + 14),
    "fail over": FaultSpan(T0 + 20, T0 + 20, kind="vip_failover", targets=("lb-1",),
                           vip_holders=(("lb", "lb-1"),), effect_end=T0 + 26),
})


@pytest.fixture
def lab() -> Iterator[PromLab]:
    """A real Prometheus with the default 5 m lookback, as in a run (failed scrapes are `up` 0)."""
    if missing_binaries():
        pytest.skip("no prometheus/promtool (./install.sh --dev installs them)")
    lab = PromLab(lookback=300)
    try:
        yield lab
    finally:
        lab.stop()


def scraped(lab: PromLab, start: float = T0 - 3, end: float = END + 3, failed: tuple[float, ...] = (),
            gap: tuple[float, float] | None = None) -> list[float]:
    """`up` for the Locust process and the harness exporter, every second; `failed` scrapes are
    up 0, `gap` is a stretch without any scrape (Prometheus itself stalled)."""
    times = [t for t in lab.scrape_times(start, end) if gap is None or not gap[0] < t < gap[1]]
    for inst, job in (("locust", "locust"), ("harness", "harness")):
        lab.scrape_target(job, inst, RUN, [(t, 0.0 if t in failed else 1.0) for t in times])
    return [t for t in times if t not in failed]


def counter(lab: PromLab, name: str, times: list[float], value: Callable[[float], float], **labels: str) -> None:
    lab.counter(name, {"run": RUN, "instance": "locust", **labels}, [(t, value(t)) for t in times])


def steady_traffic(lab: PromLab, times: list[float], fail: Callable[[float], float] = lambda t: 0.0) -> None:
    """10 requests a second; `fail(t)` is the failure count up to t."""
    counter(lab, "harness_requests_total", times, lambda t: max(0.0, 10 * (t - T0)))
    counter(lab, "harness_request_failures_total", times, fail)
    counter(lab, "harness_sessions_started_total", times, lambda t: 20.0)


def judge(lab: PromLab, assertion: dict[str, Any], tl: Timeline = TL, topo: Topology = TOPO) -> Result:
    lab.start()
    return evaluate(Assertion.model_validate(assertion), lab.prom, RUN, tl, topo)


# ---------------------------------------------------------------- no figure from missing data

def test_a_failed_scrape_at_the_window_edge_is_inconclusive_not_zero(lab: PromLab) -> None:
    """Five sessions lost, and the scrape at the window's end failed: the old idiom read 0."""
    times = scraped(lab, failed=(T0 + 10,))
    steady_traffic(lab, times)
    counter(lab, "harness_sessions_lost_total", times, lambda t: 0.0 if t < T0 + 4 else 5.0)
    r = judge(lab, {"during": "steady", "session_continuity": {"max_lost": 0}})
    assert r.status == ERROR and "up=0" in r.message and "locust" in r.message


def test_a_stalled_prometheus_inside_the_window_is_inconclusive(lab: PromLab) -> None:
    times = scraped(lab, gap=(T0 + 3, T0 + 8))
    steady_traffic(lab, times, fail=lambda t: 0.0 if t < T0 + 4 else 30.0)
    r = judge(lab, {"during": "steady", "error_budget": {"max_error_ratio": 0.01}})
    assert r.status == ERROR and "no scrape of" in r.message


def test_healthy_scrapes_give_the_real_figure(lab: PromLab) -> None:
    times = scraped(lab)
    steady_traffic(lab, times)
    counter(lab, "harness_sessions_lost_total", times, lambda t: 0.0 if t < T0 + 4 else 5.0)
    r = judge(lab, {"during": "steady", "session_continuity": {"max_lost": 0}})
    assert r.status == FAILED and r.measured == 5


def test_window_edges_do_not_snap_to_coarse_scrapes(lab: PromLab) -> None:
    """5 s scrapes, a 6 s window [10, 16] with 20 of 60 requests failing between 15 and 16: the
    old idiom read the samples at 10 and 15 and scored 0 %."""
    lab.scrape_interval = 5.0
    times = lab.scrape_times(T0 - 5, END + 5)
    for inst, job in (("locust", "locust"), ("harness", "harness")):
        lab.scrape_target(job, inst, RUN, [(t, 1.0) for t in times])
    counter(lab, "harness_requests_total", times, lambda t: max(0.0, 10 * (t - T0)))
    counter(lab, "harness_request_failures_total", times, lambda t: 0.0 if t <= T0 + 15 else 20.0)
    spec = TOPO.model_dump(by_alias=True, exclude_defaults=True)
    spec["services"]["prometheus"] = {"kind": "prometheus", "scrape_interval": 5.0}
    topo = Topology.model_validate(spec)
    tl = Timeline(T0, END, {"slow": FaultSpan(T0 + 10, T0 + 16, kind="latency", targets=("web->mysql",), windowed=True)})
    r = judge(lab, {"during": "fault:slow", "error_budget": {"max_error_ratio": 0.01}}, tl, topo)
    assert r.status == FAILED and r.measured is not None and r.measured >= 0.2  # the old idiom: 0


def test_a_series_born_inside_the_window_counts_from_zero(lab: PromLab) -> None:
    times = scraped(lab)
    steady_traffic(lab, times)
    late = [t for t in times if t >= T0 + 5]
    counter(lab, "harness_sessions_lost_total", late, lambda t: 3.0, reason="vanished")
    r = judge(lab, {"during": "steady", "session_continuity": {"max_lost": 0}})
    assert r.status == FAILED and r.measured == 3


def test_a_counter_reset_is_inconclusive(lab: PromLab) -> None:
    times = scraped(lab)
    counter(lab, "harness_requests_total", times, lambda t: 10 * ((t - T0) % 6) if t > T0 else 0.0)
    counter(lab, "harness_request_failures_total", times, lambda t: 0.0)
    r = judge(lab, {"during": "steady", "error_budget": {"max_error_ratio": 0.01}})
    assert r.status == ERROR and "reset" in r.message


# ---------------------------------------------------------------- nothing measured is not a pass

def test_no_session_started_is_nothing_to_measure(lab: PromLab) -> None:
    times = scraped(lab)
    counter(lab, "harness_requests_total", times, lambda t: max(0.0, t - T0))
    r = judge(lab, {"session_continuity": {"max_lost": 0}})
    assert r.status == ERROR and "no session was started" in r.message


def test_no_request_in_the_window_is_nothing_to_measure(lab: PromLab) -> None:
    times = scraped(lab)
    counter(lab, "harness_requests_total", times, lambda t: 0.0)
    counter(lab, "harness_request_failures_total", times, lambda t: 0.0)
    r = judge(lab, {"error_budget": {}})
    assert r.status == ERROR and "no request" in r.message


def test_zero_acknowledged_writes_and_zero_tests_are_nothing_to_measure(lab: PromLab) -> None:
    times = scraped(lab)
    tl = Timeline(T0, END, dict(TL.faults), post_at=END + 2)
    lab.gauge("harness_writes_checked", {"run": RUN, "instance": "harness"}, [(t, 0.0) for t in times])
    lab.gauge("harness_writes_missing", {"run": RUN, "instance": "harness"}, [(t, 0.0) for t in times])
    for g in ("harness_testinfra_failed", "harness_testinfra_passed"):
        lab.gauge(g, {"run": RUN, "instance": "harness", "module": "m.py", "hosts": "web"}, [(t, 0.0) for t in times])
    lab.start()
    writes = evaluate(Assertion.model_validate({"no_lost_writes": {}}), lab.prom, RUN, tl, TOPO)
    tests = evaluate(Assertion.model_validate({"testinfra": {"module": "m.py", "hosts": "web"}}),
                     lab.prom, RUN, tl, TOPO)
    assert writes.status == ERROR and "no acknowledged write" in writes.message
    assert tests.status == ERROR and "no test was collected" in tests.message


def test_promql_requires_every_series_and_refuses_empty(lab: PromLab) -> None:
    times = scraped(lab)
    for node, v in (("web-1", 0.1), ("web-2", 0.9)):
        lab.gauge("app_queue", {"run": RUN, "node": node}, [(t, v) for t in times])
    lab.start()
    both = evaluate(Assertion.model_validate({"promql": 'app_queue{run="$run"}', "below": 0.5}), lab.prom, RUN, TL, TOPO)
    empty = evaluate(Assertion.model_validate({"promql": 'nosuch{run="$run"}', "below": 0.5}), lab.prom, RUN, TL, TOPO)
    assert both.status == FAILED and both.measured == 0.9 and 'node="web-2"' in both.message
    assert empty.status == ERROR and "no series" in empty.message


# ---------------------------------------------------------------- aggregation

def _hist(lab: PromLab, times: list[float], name: str, outcome: str, per_second: dict[str, float], **labels: str) -> None:
    les = ["0.1", "0.5", "1.0", "10.0", "120.0", "+Inf"]

    def cum(t: float) -> dict[str, float]:
        n = max(0.0, t - T0)
        out, acc = {}, 0.0
        for le in les:
            acc += per_second.get(le, 0.0) * n
            out[le] = acc
        return out

    lab.histogram(name, {"run": RUN, "instance": "locust", "outcome": outcome, **labels}, [(t, cum(t)) for t in times])


def test_latency_ignores_fast_failures_and_fails_beyond_the_top_bucket(lab: PromLab) -> None:
    times = scraped(lab)
    # successful requests all beyond 120 s; many fast failures would drag the quantile down
    _hist(lab, times, "harness_request_duration_seconds", "ok", {"+Inf": 1})
    _hist(lab, times, "harness_request_duration_seconds", "error", {"0.1": 50})
    r = judge(lab, {"during": "steady", "latency": {"quantile": 0.95, "max": "30s"}})
    assert r.status == FAILED and r.measured == math.inf and "beyond the top bucket" in r.message


def test_latency_uses_the_corrected_histogram_under_rate(lab: PromLab) -> None:
    times = scraped(lab)
    _hist(lab, times, "harness_request_duration_seconds", "ok", {"0.1": 10})
    _hist(lab, times, "harness_request_corrected_duration_seconds", "ok", {"10.0": 10})
    lab.start()
    a = Assertion.model_validate({"during": "steady", "latency": {"quantile": 0.5, "max": "1s"}})
    plain = evaluate(a, lab.prom, RUN, TL, TOPO)
    rated = evaluate(a, lab.prom, RUN, TL, TOPO.model_copy(update={"load": TOPO.load.model_copy(update={"rate": 2.0})}))
    assert plain.status == PASSED and rated.status == FAILED and rated.measured is not None and rated.measured > 1


def _backend_down(lab: PromLab, times: list[float], lb: str, server: str, at: float) -> None:
    lab.gauge("harness_backend_state_timestamp_seconds",
              {"run": RUN, "instance": "harness", "lb": lb, "server": server, "state": "DOWN"},
              [(t, at) for t in times if t >= at])


def test_ejection_is_the_slowest_node_on_the_lb_carrying_traffic(lab: PromLab) -> None:
    times = scraped(lab)
    steady_traffic(lab, times)
    tl = Timeline(T0, END, {"kill two": FaultSpan(T0 + 10, T0 + 10, kind="kill", targets=("web-1", "web-2"),
                                                  vip_holders=(("lb", "lb-1"),), effect_end=T0 + 16)})
    _backend_down(lab, times, "lb-2", "web-1", T0 + 10.2)  # the standby is fast: irrelevant
    _backend_down(lab, times, "lb-1", "web-1", T0 + 11.0)
    _backend_down(lab, times, "lb-1", "web-2", T0 + 14.5)
    r = judge(lab, {"ejection_time": {"service": "web", "max": "3s"}}, tl)
    assert r.status == FAILED and r.measured == pytest.approx(4.5) and "lb-1/web-2" in r.message


def test_a_node_never_ejected_fails_ejection(lab: PromLab) -> None:
    times = scraped(lab)
    tl = Timeline(T0, END, {"kill two": FaultSpan(T0 + 10, T0 + 10, kind="kill", targets=("web-1", "web-2"),
                                                  vip_holders=(("lb", "lb-1"),), effect_end=T0 + 16)})
    _backend_down(lab, times, "lb-1", "web-1", T0 + 11.0)
    r = judge(lab, {"ejection_time": {"service": "web", "max": "3s"}}, tl)
    assert r.status == FAILED and r.measured is None and "lb-1/web-2" in r.message


def _failover_series(lab: PromLab, times: list[float], served_again: Callable[[float], float]) -> None:
    steady_traffic(lab, times)
    lab.gauge("harness_clients_served_again_timestamp_seconds", {"run": RUN, "instance": "locust"},
              [(t, served_again(t)) for t in times])
    lab.gauge("harness_lb_switch_timestamp_seconds", {"run": RUN, "instance": "locust", "lb": "lb-2"},
              [(t, T0 + 21.0) for t in times if t >= T0 + 21.0])
    lab.gauge("harness_keepalived_state_timestamp_seconds",
              {"run": RUN, "instance": "harness", "lb": "lb-1", "state": "MASTER"}, [(t, T0 - 100) for t in times])
    lab.gauge("harness_keepalived_state_timestamp_seconds",
              {"run": RUN, "instance": "harness", "lb": "lb-2", "state": "MASTER"},
              [(t, T0 + 22.9) for t in times if t >= T0 + 22.9])


def test_failover_is_when_every_client_is_served_again_not_the_first_lucky_one(lab: PromLab) -> None:
    """The first success through lb-2 came 1 s after the fault, but some users kept failing
    until 24.5 s."""
    times = scraped(lab)
    _failover_series(lab, times, lambda t: math.inf if T0 + 20 <= t < T0 + 24.5 else (T0 + 24.5 if t >= T0 + 24.5 else 0.0))
    r = judge(lab, {"failover_time": {"service": "lb", "max": "3s"}})
    assert r.status == FAILED and r.measured == pytest.approx(4.5)
    assert r.extra["first_success"] == pytest.approx(1.0) and r.extra["keepalived_side"] == pytest.approx(2.9)


def test_failover_never_complete_when_a_client_still_fails_at_the_window_end(lab: PromLab) -> None:
    times = scraped(lab)
    _failover_series(lab, times, lambda t: math.inf if t >= T0 + 20 else 0.0)
    r = judge(lab, {"failover_time": {"service": "lb", "max": "5s"}})
    assert r.status == FAILED and r.measured == math.inf


def test_recovery_relapse_fails_naming_the_instant(lab: PromLab) -> None:
    times = scraped(lab)
    lab.gauge("harness_recovered_timestamp_seconds", {"run": RUN, "instance": "harness"},
              [(t, T0 + 22.0 if t >= T0 + 22 else 0.0) for t in times])
    lab.gauge("harness_relapse_timestamp_seconds", {"run": RUN, "instance": "harness"},
              [(t, T0 + 30.0 if t >= T0 + 30 else 0.0) for t in times])
    r = judge(lab, {"recovery_time": {"max": "10s"}})
    assert r.status == FAILED and "relapsed 10.000s after the last fault" in r.message


def test_recovery_without_relapse_passes_with_its_figure(lab: PromLab) -> None:
    times = scraped(lab)
    lab.gauge("harness_recovered_timestamp_seconds", {"run": RUN, "instance": "harness"},
              [(t, T0 + 22.0 if t >= T0 + 22 else 0.0) for t in times])
    r = judge(lab, {"recovery_time": {"max": "10s"}})
    assert r.status == PASSED and r.measured == pytest.approx(2.0)


# ---------------------------------------------------------------- windows and matching (pure)

def test_an_instantaneous_fault_window_ends_at_its_effect_not_the_next_step() -> None:
    assert TL.fault_window("kill web-1") == Span(T0 + 10, T0 + 14)
    moved = Timeline(T0, END, {**TL.faults, "fail over": FaultSpan(T0 + 11, T0 + 11, kind="vip_failover")})
    assert moved.fault_window("kill web-1") == Span(T0 + 10, T0 + 14)
    never = Timeline(T0, END, {"k": FaultSpan(T0 + 10, T0 + 10, kind="kill")})
    assert never.fault_window("k") == Span(T0 + 10, END)
    explicit = Timeline(T0, END, {"k": FaultSpan(T0 + 10, T0 + 10, kind="kill", window=5.0)})
    assert explicit.fault_window("k") == Span(T0 + 10, T0 + 15)


def test_calm_is_every_moment_outside_the_fault_windows() -> None:
    assert TL.spans("calm") == [Span(T0, T0 + 10), Span(T0 + 14, T0 + 20), Span(T0 + 26, END)]


def test_repeated_steps_are_addressable() -> None:
    tl = Timeline(T0, END, {"kill": FaultSpan(T0 + 1, T0 + 1, kind="kill"), "kill #2": FaultSpan(T0 + 9, T0 + 9, kind="kill")})
    assert tl.window("fault:kill#2").start == T0 + 9 and tl.window("fault:kill #2").start == T0 + 9


def test_links_are_not_services_and_process_faults_match_their_container() -> None:
    assert fault_targets("haproxy@lb-1, lb-2") == ("lb-1", "lb-2")
    assert fault_targets("web->mysql") == ("web->mysql",)
    from harness.verdict.assertions import compile_query
    tl = Timeline(T0, END, {"slow": FaultSpan(T0 + 5, T0 + 9, kind="latency", targets=("web->mysql",), windowed=True)})
    q = compile_query(Assertion.model_validate({"ejection_time": {"service": "web"}}), RUN, tl, TOPO)
    assert q.bound is None and "no fault hit web" in q.none_means


def test_prometheus_unreachable_makes_one_assertion_an_error() -> None:
    broken = FakeProm(error=InfrastructureError("Prometheus at http://x unreachable"))
    r = evaluate(Assertion.model_validate({"session_continuity": {}}), broken, RUN, TL, TOPO)  # type: ignore[arg-type]
    assert r.status == ERROR and "unreachable" in r.message


# ---------------------------------------------------------------- compare: the regression gate

def test_compare_fails_a_figure_worse_than_its_baseline_beyond_tolerance() -> None:
    now = [Result("failover_time", "failover_time", "run", PASSED, 3.6, 5.0, "s", "", "", {"op": "<="}),
           Result("ejection_time", "ejection_time", "run", PASSED, 1.1, 3.0, "s", "", "", {"op": "<="})]
    base = {"run_id": "old", "assertions": [{"name": "failover_time", "measured": 3.0},
                                            {"name": "ejection_time", "measured": 1.0}]}
    gates, rows = compare(now, base, {"failover_time": ("relative", 0.1), "default": ("absolute", 0.5)})
    by = {g.name: g for g in gates}
    assert by["failover_time vs baseline"].status == FAILED and "+20.0%" in by["failover_time vs baseline"].message
    assert by["ejection_time vs baseline"].status == PASSED
    assert {r["name"] for r in rows} == {"failover_time", "ejection_time"}


# ---------------------------------------------------------------- data tier: no figure from a silent replica

DB_TOPO = Topology.model_validate({
    "name": "db",
    "services": {
        "lb": {"kind": "haproxy", "backends": "web"},
        "web": {"kind": "web", "sessions": "files"},
        "mysql": {"kind": "mariadb", "replicas": 2,
                  "replication": {"mode": "semi_sync"}, "keepalived": {"vip": "auto"}},
    },
    "assertions": [{"replication_lag": {"max": "1s"}}],
})


def _heartbeat(lab: PromLab, times: list[float], instance: str, lag: float) -> None:
    labels = {"run": RUN, "instance": instance}
    lab.gauge("mysql_heartbeat_now_timestamp_seconds", labels, [(t, t) for t in times])
    lab.gauge("mysql_heartbeat_stored_timestamp_seconds", labels, [(t, t - lag) for t in times])


def test_replication_lag_of_a_replica_that_fell_silent_is_inconclusive(lab: PromLab) -> None:
    """mysql-2 lags 5 s but its exporter stopped answering: the primary's 0.05 s alone used to
    be the figure."""
    times = scraped(lab)
    _heartbeat(lab, times, "mysql-1", 0.05)
    r = judge(lab, {"replication_lag": {"max": "1s"}}, Timeline(T0, END, {}), DB_TOPO)
    assert r.status == ERROR and "mysql-1, mysql-2" in r.message


def test_replication_lag_of_every_replica_is_judged(lab: PromLab) -> None:
    times = scraped(lab)
    _heartbeat(lab, times, "mysql-1", 0.05)
    _heartbeat(lab, times, "mysql-2", 5.0)
    r = judge(lab, {"replication_lag": {"max": "1s"}}, Timeline(T0, END, {}), DB_TOPO)
    assert r.status == FAILED and r.measured == pytest.approx(5.0)


def test_replication_lag_excuses_the_instance_a_fault_killed(lab: PromLab) -> None:
    times = scraped(lab)
    _heartbeat(lab, [t for t in times if t < T0 + 10], "mysql-1", 0.05)
    _heartbeat(lab, times, "mysql-2", 0.2)
    tl = Timeline(T0, END, {"kill primary": FaultSpan(T0 + 10, T0 + 10, kind="kill", targets=("mysql-1",))})
    r = judge(lab, {"replication_lag": {"max": "1s"}}, tl, DB_TOPO)
    assert r.status == PASSED and r.measured == pytest.approx(0.2)
