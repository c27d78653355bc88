"""The client-side bookkeeping of the Locust plugin (harness/load/requeststats.py, plain Python,
no locust import): latency histograms by outcome up to 120 s, and per user LB switches and
"served again after the last failure"."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from harness.load.requeststats import BUCKETS, ClientState, RequestStats


def _samples(collector: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    reg = CollectorRegistry()
    reg.register(collector)  # type: ignore[arg-type]
    out = {}
    for family in text_string_to_metric_families(generate_latest(reg).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _gauge(collector: object, name: str) -> float:
    return _samples(collector)[(name, ())]


def test_buckets_reach_two_minutes() -> None:
    assert {20, 30, 60, 120} <= set(BUCKETS)
    assert list(BUCKETS) == sorted(BUCKETS)


def test_slow_answers_land_in_their_bucket_not_only_in_inf() -> None:
    stats = RequestStats()
    stats.record("/w", "GET", "200", "web-1", 45.0, False, 1000.0)
    stats.record("/w", "GET", "0", "none", 90.0, True, 1000.0)
    s = _samples(stats)
    ok = (("name", "/w"), ("outcome", "ok"), ("served_by", "web-1"), ("status", "200"))
    err = (("name", "/w"), ("outcome", "error"), ("served_by", "none"), ("status", "0"))
    b = "harness_request_duration_seconds_bucket"
    assert s[(b, tuple(sorted((*ok, ("le", "30.0")))))] == 0
    assert s[(b, tuple(sorted((*ok, ("le", "60.0")))))] == 1
    assert s[(b, tuple(sorted((*err, ("le", "60.0")))))] == 0
    assert s[(b, tuple(sorted((*err, ("le", "120.0")))))] == 1


def test_corrected_latency_by_outcome_from_the_intended_send_time() -> None:
    stats = RequestStats()
    stats.record("/w", "GET", "200", "web-1", 0.01, False, 1000.0, intended=990.0)
    stats.record("/w", "GET", "503", "none", 0.01, True, 1000.0, intended=999.0)
    stats.record("/w", "GET", "200", "web-1", 0.01, False, 1000.0)  # not scheduled: not corrected
    s = _samples(stats)
    c = "harness_request_corrected_duration_seconds"
    assert s[(c + "_count", (("name", "/w"), ("outcome", "ok")))] == 1
    assert s[(c + "_sum", (("name", "/w"), ("outcome", "ok")))] == 10.0
    assert s[(c + "_count", (("name", "/w"), ("outcome", "error")))] == 1
    assert s[(c + "_bucket", (("le", "10.0"), ("name", "/w"), ("outcome", "ok")))] == 1
    assert s[(c + "_bucket", (("le", "5.0"), ("name", "/w"), ("outcome", "ok")))] == 0
    # requests and failures keep their labels
    key = (("method", "GET"), ("name", "/w"), ("served_by", "web-1"), ("status", "200"))
    assert s[("harness_requests_total", key)] == 2


def test_nobody_failed_exports_zero() -> None:
    c = ClientState()
    c.record(1, True, "lb-1", 10.0)
    assert _gauge(c, "harness_clients_served_again_timestamp_seconds") == 0
    assert _gauge(c, "harness_last_failure_timestamp_seconds") == 0


def test_served_again_is_the_latest_recovery_and_inf_while_anyone_still_fails() -> None:
    c = ClientState()
    c.record(1, True, "lb-1", 10.0)
    c.record(2, True, "lb-1", 10.0)
    c.record(1, False, "", 11.0)
    c.record(2, False, "", 12.0)
    assert math.isinf(_gauge(c, "harness_clients_served_again_timestamp_seconds"))
    c.record(1, True, "lb-2", 13.0)
    # user 2 still waits: failover is not complete
    assert math.isinf(_gauge(c, "harness_clients_served_again_timestamp_seconds"))
    c.record(2, True, "lb-2", 15.0)
    assert _gauge(c, "harness_clients_served_again_timestamp_seconds") == 15.0
    # later successes do not move it: the first success after the last failure counts
    c.record(2, True, "lb-2", 16.0)
    assert _gauge(c, "harness_clients_served_again_timestamp_seconds") == 15.0
    # a user failing again is waiting again
    c.record(1, False, "", 17.0)
    assert math.isinf(_gauge(c, "harness_clients_served_again_timestamp_seconds"))
    assert _gauge(c, "harness_last_failure_timestamp_seconds") == 17.0
    c.record(1, True, "lb-2", 18.0)
    assert _gauge(c, "harness_clients_served_again_timestamp_seconds") == 18.0


def test_lb_switch_is_per_user() -> None:
    c = ClientState()
    assert c.record(1, True, "lb-1", 10.0) is None
    # another user's first answer through lb-2 is no switch (a process-wide "last LB" said so)
    assert c.record(2, True, "lb-2", 11.0) is None
    assert c.record(1, True, "lb-1", 12.0) is None
    assert c.lb_switch == {}
    assert c.record(1, False, "", 13.0) is None  # failures move nothing
    assert c.record(1, True, "lb-2", 14.0) == "lb-1"
    assert c.record(2, True, "lb-1", 15.0) == "lb-2"
    s = _samples(c)
    assert s[("harness_lb_switch_timestamp_seconds", (("lb", "lb-2"),))] == 14.0
    assert s[("harness_lb_switch_timestamp_seconds", (("lb", "lb-1"),))] == 15.0


def test_requests_without_a_user_move_only_the_last_failure() -> None:
    c = ClientState()
    c.record(None, False, "", 5.0)
    c.record(None, True, "lb-2", 6.0)
    assert _gauge(c, "harness_clients_served_again_timestamp_seconds") == 0
    assert _gauge(c, "harness_last_failure_timestamp_seconds") == 5.0
    assert c.lb_switch == {}


def test_a_retired_user_keeps_its_recovery_but_not_its_pending_failure() -> None:
    c = ClientState()
    c.record(1, False, "", 10.0)
    c.record(1, True, "lb-1", 12.0)
    c.record(2, False, "", 13.0)
    c.retire(1)
    c.retire(2)  # stopped by a ramp-down while failing: nobody waits for it any more
    assert _gauge(c, "harness_clients_served_again_timestamp_seconds") == 12.0
    c.record(3, False, "", 14.0)
    c.record(3, True, "lb-1", 14.5)
    assert _gauge(c, "harness_clients_served_again_timestamp_seconds") == 14.5


def test_the_lb_switch_is_the_first_of_each_wave() -> None:
    c = ClientState()
    for user in ("a", "b", "c"):
        c.record(user, True, "lb-1", 1.0)
    c.record("a", True, "lb-2", 10.0)  # the failover: a moves first, the others follow
    c.record("b", True, "lb-2", 10.4)
    c.record("c", True, "lb-2", 11.2)
    assert c.lb_switch == {"lb-2": 10.0}
    c.record("a", True, "lb-1", 20.0)  # fail back: a new wave onto lb-1
    c.record("b", True, "lb-1", 20.3)
    assert c.lb_switch == {"lb-2": 10.0, "lb-1": 20.0}
    c.record("a", True, "lb-2", 30.0)  # and over again: a new wave onto lb-2
    c.record("b", True, "lb-2", 30.5)
    assert c.lb_switch["lb-2"] == 30.0


def test_one_series_lookup_keeps_every_series_apart() -> None:
    """record() finds a request's series with one lookup (the hot path): the same name, method,
    status and node ending ok and failed share their request counter, and keep apart their
    histograms, last answers and corrected latencies; the series repeat with fresh keys too."""
    stats = RequestStats(buckets=(0.1, 1.0))
    stats.record("/x", "GET", "503", "web-1", 0.05, False, 10.0)
    stats.record("/x", "GET", "503", "web-1", 0.5, True, 11.0, intended=10.5)
    stats.record("/x", "GET", "503", "web-1", 2.0, True, 12.0)
    stats.record("/x", "POST", "503", "web-1", 0.05, False, 13.0)
    key = "/".join(["", "x"])  # an equal string that is not the same object
    stats.record(key, "GET", "503", "web-1", 0.05, False, 14.0)
    s = _samples(stats)
    lbl = (("method", "GET"), ("name", "/x"), ("served_by", "web-1"), ("status", "503"))
    assert s[("harness_requests_total", lbl)] == 4
    assert s[("harness_request_failures_total", lbl)] == 2
    post = (("method", "POST"), *lbl[1:])
    assert s[("harness_requests_total", post)] == 1
    assert ("harness_request_failures_total", post) not in s
    d = "harness_request_duration_seconds"
    ok = (("name", "/x"), ("outcome", "ok"), ("served_by", "web-1"), ("status", "503"))
    err = (("name", "/x"), ("outcome", "error"), ("served_by", "web-1"), ("status", "503"))
    assert s[(d + "_count", ok)] == 3  # GET twice and POST: the histogram has no method
    assert s[(d + "_count", err)] == 2
    assert s[(d + "_bucket", tuple(sorted((*err, ("le", "1.0")))))] == 1
    assert s[(d + "_sum", err)] == 2.5
    last = "harness_last_response_timestamp_seconds"
    assert s[(last, (("outcome", "ok"), ("served_by", "web-1")))] == 14.0
    assert s[(last, (("outcome", "error"), ("served_by", "web-1")))] == 12.0
    c = "harness_request_corrected_duration_seconds"
    assert s[(c + "_count", (("name", "/x"), ("outcome", "error")))] == 1
    assert (c + "_count", (("name", "/x"), ("outcome", "ok"))) not in s
