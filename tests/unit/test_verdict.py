"""Assertions compile to PromQL over the right window and compare to the right bound. A fake
Prometheus answers by the metric in the query; the real one is exercised by the Docker tests."""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness.errors import InfrastructureError
from harness.spec.models import Assertion, Topology
from harness.verdict.assertions import FAILED, PASSED, delta, evaluate
from harness.verdict.windows import FaultSpan, Span, Timeline

TOPO = Topology.model_validate({
    "name": "t",
    "services": {
        "lb": {"kind": "haproxy", "replicas": 2, "backends": "web", "keepalived": {"advert_int": "1s"},
               "check": {"interval": "500ms", "fall": 2, "timeout": "1s"}},
        "web": {"kind": "web", "replicas": 3},
        "redis": {"kind": "redis"}, "mysql": {"kind": "mariadb"},
    },
})
TL = Timeline(1000.0, 1030.0, {
    "kill web-1": FaultSpan(1010.0, 1010.0, kind="kill", targets=("web-1",), vip_holders=(("lb", "lb-1"),)),
    "fail over": FaultSpan(1020.0, 1020.0, kind="vip_failover", targets=("lb-1",), vip_holders=(("lb", "lb-1"),)),
})


class FakeProm:
    def __init__(self, answers: dict[str, float | None]) -> None:
        self.answers, self.queries = answers, []  # type: ignore[var-annotated]

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        self.queries.append((expr, at))
        for pattern, value in self.answers.items():
            if re.search(pattern, expr):
                return value
        return None


def run(assertion: dict[str, Any], answers: dict[str, float | None]) -> tuple[Any, FakeProm]:
    prom = FakeProm(answers)
    return evaluate(Assertion.model_validate(assertion), prom, "r1", TL, TOPO), prom  # type: ignore[arg-type]


def test_delta_is_exact_over_the_window_with_at_modifiers() -> None:
    expr = delta("harness_requests_total", "r1", Span(1000, 1030))
    assert expr == ('((sum(harness_requests_total{run="r1"} @ 1030.000) or vector(0)) - '
                    '(sum(harness_requests_total{run="r1"} @ 1000.000) or vector(0)))')


def test_session_continuity_fails_on_one_lost_session_and_passes_on_none() -> None:
    bad, _ = run({"session_continuity": {"max_lost": 0}}, {"harness_sessions_lost_total": 1})
    good, _ = run({"session_continuity": {"max_lost": 0}}, {"harness_sessions_lost_total": 0})
    assert bad.status == FAILED and bad.measured == 1 and good.status == PASSED
    assert "harness_sessions_lost_total" in bad.promql


def test_windows_steady_recovery_and_fault() -> None:
    assert TL.window("steady") == Span(1000, 1010)
    assert TL.window("recovery") == Span(1020, 1030)
    assert TL.window("fault:kill web-1") == Span(1010, 1020)  # instantaneous: until the next fault
    r, _ = run({"during": "steady", "error_budget": {"max_error_ratio": 0.01}}, {"harness_request_failures_total": 0.02})
    assert "@ 1010.000" in r.promql and "@ 1000.000" in r.promql and r.status == FAILED


def test_error_budget_without_requests_is_an_error_not_a_pass() -> None:
    r, _ = run({"error_budget": {}}, {})
    assert r.status == "error" and r.measured is None


def test_ejection_time_uses_the_lb_state_change_and_the_config_bound() -> None:
    r, prom = run({"ejection_time": {"service": "web", "max": "auto"}},
                  {r"harness_backend_state_timestamp_seconds": 1.7, r"harness_last_response": 0.05})
    assert r.status == PASSED and r.measured == 1.7
    assert r.bound == pytest.approx(2 * (0.5 + 1.0))  # fall x (inter + timeout)
    assert 'server=~"web-1"' in r.promql and 'state="DOWN"' in r.promql and ">= 1010.000" in r.promql
    assert r.extra["client_side"] == 0.05 and "bound from config" in r.message


def test_ejection_time_fails_past_an_explicit_bound_and_when_never_ejected() -> None:
    slow, _ = run({"ejection_time": {"service": "web", "max": "1s"}}, {"harness_backend_state": 4.2})
    never, _ = run({"ejection_time": {"service": "web", "max": "1s"}}, {})
    assert slow.status == FAILED and never.status == FAILED and never.measured is None


def test_failover_time_looks_for_a_new_lb_after_the_fault() -> None:
    r, _ = run({"failover_time": {"service": "lb", "fault": "fail over"}},
               {"harness_lb_switch": 3.1, "harness_keepalived_state": 2.9})
    assert r.status == PASSED and r.measured == 3.1
    assert 'lb!="lb-1"' in r.promql and ">= 1020.000" in r.promql
    assert r.extra["keepalived_side"] == 2.9
    assert r.bound == pytest.approx(3 * 1.0 + (256 - 150) / 256 + 1.0)


def test_promql_between_and_evaluation_time() -> None:
    inside, prom = run({"promql": 'sum(up{run="$run"})', "between": [2, 5]}, {"up": 3})
    outside, _ = run({"promql": "sum(up)", "between": [2, 5]}, {"up": 6})
    assert inside.status == PASSED and outside.status == FAILED
    assert prom.queries[-1] == ('sum(up{run="r1"})', 1030.0)


def test_latency_quantile_over_the_window() -> None:
    r, _ = run({"latency": {"quantile": 0.99, "max": "200ms", "request": "/whoami"}}, {"histogram_quantile": 0.25})
    assert r.status == FAILED and "histogram_quantile(0.99" in r.promql and 'name="/whoami"' in r.promql
    assert "[30s] @ 1030.000" in r.promql


def test_recovery_time_fails_when_never_recovered() -> None:
    r, _ = run({"recovery_time": {"max": "5s"}}, {})
    assert r.status == FAILED and "not steady again" in r.message


def test_a_prometheus_error_makes_one_assertion_an_error() -> None:
    class Broken(FakeProm):
        def scalar(self, expr: str, at: float | None = None) -> float | None:
            raise InfrastructureError("Prometheus at http://x unreachable")

    r = evaluate(Assertion.model_validate({"session_continuity": {}}), Broken({}), "r1", TL, TOPO)  # type: ignore[arg-type]
    assert r.status == "error" and "unreachable" in r.message


def test_ejection_time_without_a_matching_fault_cannot_be_judged() -> None:
    tl = Timeline(1000.0, 1030.0, {})
    r = evaluate(Assertion.model_validate({"ejection_time": {"service": "web"}}), FakeProm({}), "r1", tl, TOPO)  # type: ignore[arg-type]
    assert r.status == "error" and "no fault hit web" in r.message
