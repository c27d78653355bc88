"""The Locust plugin, exercised in a child process (importing locust gevent-patches the whole
process, so never in the test process): every request event becomes the labelled series the
verdict queries, and a request whose event never fires (its check raised, or its user was
killed while it was in flight) is still counted, exactly once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import locust  # noqa: F401  (gevent first)
    from types import SimpleNamespace
    from prometheus_client import generate_latest
    from harness.load import plugin

    ok = SimpleNamespace(status_code=200, headers={"X-Served-By": "web-2", "X-LB": "lb-1"})
    bad = SimpleNamespace(status_code=503, headers={"X-LB": "lb-1"})
    moved = SimpleNamespace(status_code=200, headers={"X-Served-By": "web-3", "X-LB": "lb-2"})
    u1, u2 = {"harness_user": 1}, {"harness_user": 2}
    plugin._on_request("GET", "/whoami", 12.0, response=ok, context=u1)
    plugin._on_request("GET", "/whoami", 40.0, response=bad, exception=RuntimeError("503"), context=u1)
    # user 2 has only ever seen lb-2: no switch for it
    plugin._on_request("GET", "/whoami", 9.0, response=moved, context=u2)
    assert plugin.CLIENTS.lb_switch == {}, plugin.CLIENTS.lb_switch
    plugin._on_request("POST", "/orders", 15.0, response=moved, context={**u1, "harness_intended": 0.0})
    plugin.session_lost("vanished", "u1", "web-2")
    plugin.write_acked("abc", "web-3")
    print(generate_latest(plugin.REGISTRY).decode())
""")


def _run(script: str) -> str:
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_request_events_become_labelled_series() -> None:
    text = _run(SCRIPT)
    assert (
        'harness_requests_total{method="GET",name="/whoami",served_by="web-2",status="200"} 1.0'
        in text
    )
    assert (
        'harness_request_failures_total{method="GET",name="/whoami",served_by="none",status="503"} 1.0'
        in text
    )
    assert (
        'harness_request_duration_seconds_count{name="/whoami",outcome="ok",served_by="web-2",status="200"} 1.0'
        in text
    )
    assert (
        'harness_request_duration_seconds_count{name="/whoami",outcome="error",served_by="none",status="503"} 1.0'
        in text
    )
    assert 'harness_sessions_lost_total{reason="vanished"} 1.0' in text
    assert "harness_writes_acked_total 1.0" in text
    # user 1's success through lb-2 after its success through lb-1 is the failover instant
    assert 'harness_lb_switch_timestamp_seconds{lb="lb-2"}' in text
    assert 'harness_lb_switch_timestamp_seconds{lb="lb-1"}' not in text
    assert 'harness_last_response_timestamp_seconds{outcome="error",served_by="none"}' in text
    # a request sent late against a fixed schedule counts from when it should have been sent
    assert (
        'harness_request_corrected_duration_seconds_count{name="/orders",outcome="ok"} 1.0' in text
    )
    # user 1 failed, then was served again: a finite instant, not +Inf, not 0
    served = _value(text, "harness_clients_served_again_timestamp_seconds")
    failure = _value(text, "harness_last_failure_timestamp_seconds")
    assert 0 < failure <= served < float("inf")


def _value(text: str, metric: str) -> float:
    for line in text.splitlines():
        if line.startswith(metric + " "):
            return float(line.split()[1])
    raise AssertionError(f"{metric} not exported")


TRACKING = textwrap.dedent("""
    import locust  # noqa: F401  (gevent first)
    from types import SimpleNamespace
    from gevent import GreenletExit
    from locust.event import EventHook
    from prometheus_client import generate_latest
    from harness.load import plugin

    hook = EventHook()
    hook.add_listener(plugin._on_request)
    user = SimpleNamespace()
    session = SimpleNamespace(user=user, request_event=hook, request_name=None)

    def original(self, method, url, name=None, catch_response=False, context={}, **kw):
        mode = kw.get("mode")
        if mode == "killed":
            raise GreenletExit()
        if mode == "raises":
            raise ValueError("bad url")
        rcm = SimpleNamespace(status_code=200, headers={"X-Served-By": "web-1"},
                              request_meta={"context": context})
        if mode == "ok":
            hook.fire(request_type=method, name=name or url, response_time=1.0, response_length=0,
                      response=rcm, exception=None, context=context)
        return rcm

    request = plugin._tracked_request(original)
    request(session, "GET", "/a", mode="ok")                      # counted by its own event
    for mode, exc in (("killed", GreenletExit), ("raises", ValueError)):
        try:
            request(session, "GET", "/b", name="/named", mode=mode)
        except exc:
            pass
    assert not plugin._inflight
    # a catch_response check that raised: Locust's __exit__ returns False without the event
    def exit_(self, exc, value, tb):
        return False
    rcm = request(session, "GET", "/c", catch_response=True, mode="pending")
    plugin._tracked_exit(exit_)(rcm, KeyError, KeyError("user"), None)
    # the same again, and once more still in flight at the stop
    rcm2 = request(session, "GET", "/d", catch_response=True, mode="pending")
    request(session, "GET", "/e", catch_response=True, mode="pending")
    assert len(plugin._inflight) == 2
    plugin._tracked_exit(exit_)(rcm2, GreenletExit, GreenletExit(), None)  # killed in the check
    assert plugin.abort_in_flight() == 1
    assert not plugin._inflight
    # an event arriving after its request was settled is not counted twice
    late = rcm2.request_meta["context"]
    hook.fire(request_type="GET", name="/d", response_time=1.0, response_length=0,
              response=rcm2, exception=None, context=late)
    # the stop began, then a user woke and sent a request Locust killed at once: the harness
    # cut it before the system could answer, so it is not counted at all
    import time
    last_failure = plugin.CLIENTS.last_failure
    other = SimpleNamespace(user=SimpleNamespace(), request_event=hook, request_name=None)
    plugin._on_test_stopping(None)
    time.sleep(0.01)
    request(other, "GET", "/late", catch_response=True, mode="pending")
    assert plugin.abort_in_flight() == 1
    uid = plugin.user_key(other.user)
    assert uid not in plugin.CLIENTS.pending and uid != plugin.user_key(user)
    assert plugin.CLIENTS.last_failure == last_failure
    assert plugin.user_key(user) in plugin.CLIENTS.pending
    print(generate_latest(plugin.REGISTRY).decode())
""")


def test_requests_whose_event_never_fires_are_counted_once() -> None:
    text = _run(TRACKING)
    assert (
        'harness_requests_total{method="GET",name="/a",served_by="web-1",status="200"} 1.0' in text
    )
    assert 'harness_request_failures_total{method="GET",name="/a"' not in text
    assert 'name="/late"' not in text  # sent after the stop began and cut at once: not a request
    # killed in flight and raised: failures with status 0, under the name the request used
    assert (
        'harness_request_failures_total{method="GET",name="/named",served_by="none",status="0"} 2.0'
        in text
    )
    # the check raised: a failure with the answer's own status and node
    assert (
        'harness_request_failures_total{method="GET",name="/c",served_by="web-1",status="200"} 1.0'
        in text
    )
    # killed in its check, and in flight at the stop: aborted, status 0
    assert (
        'harness_request_failures_total{method="GET",name="/d",served_by="none",status="0"} 1.0'
        in text
    )
    assert 'harness_requests_total{method="GET",name="/d",served_by="none",status="0"} 1.0' in text
    assert 'name="/d",served_by="web-1"' not in text
    assert (
        'harness_request_failures_total{method="GET",name="/e",served_by="none",status="0"} 1.0'
        in text
    )
    # the user's last request failed: not served again
    assert _value(text, "harness_clients_served_again_timestamp_seconds") == float("inf")


USERS = textwrap.dedent("""
    import locust  # noqa: F401  (gevent first)
    from types import SimpleNamespace
    from locust.exception import StopUser
    from harness.load import users

    class R(SimpleNamespace):
        def failure(self, msg):
            self.failed = msg

    r = R(failed=None)
    with users.checked(r):
        raise ValueError("Expecting value: line 1 column 1")
    assert r.failed and "ValueError" in r.failed, r.failed
    r = R(failed=None)
    try:
        with users.checked(r):
            raise StopUser()
    except StopUser:
        pass
    assert r.failed is None
    html = SimpleNamespace(content=b"<html><form>sign in</form></html>")
    assert users.identity(html) is None
    assert users.identity(SimpleNamespace(content=b"{}")) is None
    assert users.identity(SimpleNamespace(content=b"[1]")) is None
    assert users.identity(SimpleNamespace(content=b'{"user": null}')) is None
    assert users.identity(SimpleNamespace(content=b'{"user": "u-1"}')) == "u-1"
    assert users.served_by(SimpleNamespace(headers=None)) == ""
    print("ok")
""")


def test_user_checks_never_raise() -> None:
    assert _run(USERS).strip() == "ok"


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
    lbl = 'name="/x",outcome="ok",served_by="web-1",status="200"'
    assert f'harness_request_duration_seconds_bucket{{le="0.1",{lbl}}} 2.0' in text
    assert f'harness_request_duration_seconds_bucket{{le="1.0",{lbl}}} 3.0' in text
    assert f'harness_request_duration_seconds_bucket{{le="+Inf",{lbl}}} 4.0' in text
    assert f"harness_request_duration_seconds_sum{{{lbl}}} 2.65" in text
    assert (
        'harness_request_duration_seconds_count{name="/x",outcome="error",served_by="none",status="503"} 1.0'
        in text
    )
    assert (
        'harness_requests_total{method="GET",name="/x",served_by="none",status="503"} 1.0' in text
    )
    assert (
        'harness_request_failures_total{method="GET",name="/x",served_by="none",status="503"} 1.0'
        in text
    )
    assert 'harness_request_failures_total{method="GET",name="/x",served_by="web-1"' not in text
    assert 'harness_last_response_timestamp_seconds{outcome="error",served_by="none"} 101.0' in text


ANSWERS = textwrap.dedent("""
    import locust  # noqa: F401  (gevent first)
    from types import SimpleNamespace
    from geventhttpclient.header import Headers
    from locust.contrib.fasthttp import FastResponse
    from prometheus_client import generate_latest
    from harness.load import plugin

    class Answer:  # what FastResponse reads of geventhttpclient's own response
        def __init__(self, code, headers):
            self._headers_index, self.code = Headers(headers), code
        def get_code(self):
            return self.code

    served = FastResponse(Answer(200, {"x-served-by": "web-2", "X-LB": "lb-1"}))
    bare = FastResponse(Answer(502, {}))  # an empty Headers is falsy: still read, not replaced
    plugin._on_request("GET", "/a", 5.0, response=served, context={"harness_user": 1})
    plugin._on_request("GET", "/a", 5.0, response=bare, exception=RuntimeError("502"))
    plugin._on_request("GET", "/a", 5.0, response=None, exception=OSError("refused"), context={})
    plugin._on_request("GET", "/a", 5.0, response=SimpleNamespace(status_code=204))  # no headers
    plugin._on_request("GET", "/a", 5.0, response=served, context={"harness_user": 1},
                       start_time=1.0, url="http://x/a", response_length=3, future_arg=1)
    print(generate_latest(plugin.REGISTRY).decode())
""")


def test_answers_of_every_shape_are_labelled() -> None:
    """The request listener reads geventhttpclient's Headers case-insensitively, and counts
    answers without headers, without a response or without a context under served_by none."""
    text = _run(ANSWERS)
    assert (
        'harness_requests_total{method="GET",name="/a",served_by="web-2",status="200"} 2.0' in text
    )
    assert (
        'harness_request_failures_total{method="GET",name="/a",served_by="none",status="502"} 1.0'
        in text
    )
    assert (
        'harness_request_failures_total{method="GET",name="/a",served_by="none",status="0"} 1.0'
        in text
    )
    assert (
        'harness_requests_total{method="GET",name="/a",served_by="none",status="204"} 1.0' in text
    )
    assert "harness_last_failure_timestamp_seconds 0.0" not in text
