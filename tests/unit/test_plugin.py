"""The Locust plugin, exercised in a child process (importing locust gevent-patches the whole
process, so never in the test process): every request event becomes the labelled series the
verdict queries."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import locust  # noqa: F401  (gevent first)
    from types import SimpleNamespace
    from prometheus_client import generate_latest
    from harness.load import plugin

    ok = SimpleNamespace(status_code=200, headers={"X-Served-By": "web-2", "X-LB": "lb-1"})
    bad = SimpleNamespace(status_code=503, headers={"X-LB": "lb-1"})
    moved = SimpleNamespace(status_code=200, headers={"X-Served-By": "web-3", "X-LB": "lb-2"})
    plugin._on_request("GET", "/whoami", 12.0, response=ok, context={})
    plugin._on_request("GET", "/whoami", 40.0, response=bad, exception=RuntimeError("503"), context={})
    plugin._on_request("POST", "/orders", 15.0, response=moved, context={"harness_intended": 0.0})
    plugin.session_lost("vanished", "u1", "web-2")
    plugin.write_acked("abc", "web-3")
    print(generate_latest(plugin.REGISTRY).decode())
''')


def test_request_events_become_labelled_series() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert 'harness_requests_total{method="GET",name="/whoami",served_by="web-2",status="200"} 1.0' in text
    assert 'harness_request_failures_total{method="GET",name="/whoami",served_by="none",status="503"} 1.0' in text
    assert 'harness_request_duration_seconds_count{name="/whoami",served_by="web-2",status="200"} 1.0' in text
    assert 'harness_sessions_lost_total{reason="vanished"} 1.0' in text
    assert "harness_writes_acked_total 1.0" in text
    # the first success through another LB is the failover instant clients saw
    assert 'harness_lb_switch_timestamp_seconds{lb="lb-2"}' in text
    assert 'harness_last_response_timestamp_seconds{outcome="error",served_by="none"}' in text
    # a request sent late against a fixed schedule counts from when it should have been sent
    assert 'harness_request_corrected_duration_seconds_count{name="/orders"} 1.0' in text


def test_request_stats_histogram_is_cumulative_with_le_semantics() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from harness.load.requeststats import RequestStats

    stats = RequestStats(buckets=(0.1, 1.0))
    reg = CollectorRegistry()
    reg.register(stats)
    for secs in (0.05, 0.1, 0.5, 2.0):
        stats.record("/x", "GET", "200", "web-1", secs, False, 100.0)
    stats.record("/x", "GET", "503", "none", 0.01, True, 101.0)
    text = generate_latest(reg).decode()
    assert 'harness_request_duration_seconds_bucket{le="0.1",name="/x",served_by="web-1",status="200"} 2.0' in text
    assert 'harness_request_duration_seconds_bucket{le="1.0",name="/x",served_by="web-1",status="200"} 3.0' in text
    assert 'harness_request_duration_seconds_bucket{le="+Inf",name="/x",served_by="web-1",status="200"} 4.0' in text
    assert 'harness_request_duration_seconds_sum{name="/x",served_by="web-1",status="200"} 2.65' in text
    assert 'harness_requests_total{method="GET",name="/x",served_by="none",status="503"} 1.0' in text
    assert 'harness_request_failures_total{method="GET",name="/x",served_by="none",status="503"} 1.0' in text
    assert 'harness_request_failures_total{method="GET",name="/x",served_by="web-1"' not in text
    assert 'harness_last_response_timestamp_seconds{outcome="error",served_by="none"} 101.0' in text
