"""Runs inside the Locust process. Exports what the verdict needs as Prometheus metrics, labelled
by request name, status and serving node (X-Served-By), and keeps a JSONL event log with
millisecond timestamps. Locustfiles report app-level facts through `session_started()`,
`session_lost()` and `write_acked()`.

Active only when the harness set HARNESS_METRICS_ADDR, so the same locustfile runs under raw
`locust` too (that is how bench/load measures the plugin's cost).

End of run: on `quitting` the process waits until the harness has seen the final figures in
Prometheus (it creates HARNESS_RELEASE_FILE), so no count is lost between the last scrape and exit.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from locust import events
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from harness.load.requeststats import RequestStats

ADDR = os.environ.get("HARNESS_METRICS_ADDR", "")
ROLE = os.environ.get("HARNESS_LOCUST_ROLE", "local")  # local | master | worker
USER_WEIGHTS = json.loads(os.environ.get("HARNESS_USER_WEIGHTS", "{}"))
RATE = float(os.environ.get("HARNESS_RATE", "0") or 0)
EVENT_LOG = os.environ.get("HARNESS_EVENT_LOG", "")
RELEASE_FILE = os.environ.get("HARNESS_RELEASE_FILE", "")
RELEASE_TIMEOUT = float(os.environ.get("HARNESS_RELEASE_TIMEOUT", "60"))

REGISTRY = CollectorRegistry(auto_describe=True)
STATS = RequestStats()  # requests, failures, latency, last response per node: the hot path
REGISTRY.register(STATS)
SESSIONS_STARTED = Counter(
    "harness_sessions_started", "Logins that created a session.", registry=REGISTRY
)
SESSIONS_LOST = Counter(
    "harness_sessions_lost",
    "Sessions whose user changed or vanished.",
    ["reason"],
    registry=REGISTRY,
)
WRITES_ACKED = Counter(
    "harness_writes_acked", "Writes the app acknowledged (200 after commit).", registry=REGISTRY
)
USERS = Gauge(
    "harness_users", "Current simulated users in this Locust process.", ["role"], registry=REGISTRY
)
CORRECTED = Histogram(
    "harness_request_corrected_duration_seconds",
    "Response time from the intended send time (fixed arrival rate): slow answers delay later sends, "
    "and this counts that delay instead of hiding it (coordinated omission).",
    ["name"],
    registry=REGISTRY,
    buckets=(
        0.005,
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.15,
        0.2,
        0.3,
        0.5,
        0.75,
        1,
        1.5,
        2,
        3,
        5,
        10,
        20,
        30,
    ),
)
LB_SWITCH = Gauge(
    "harness_lb_switch_timestamp_seconds",
    "When clients got their first successful answer through this LB after another LB had answered.",
    ["lb"],
    registry=REGISTRY,
)
STARTED = Gauge(
    "harness_load_started_timestamp_seconds", "When the load test started.", registry=REGISTRY
)
FINISHED = Gauge(
    "harness_load_finished_timestamp_seconds", "When the load test stopped.", registry=REGISTRY
)

_log_lock = threading.Lock()
_log_fh: Any = None


def log_event(kind: str, **fields: Any) -> None:
    if _log_fh is None:
        return
    line = json.dumps({"ts": round(time.time(), 3), "event": kind, **fields}, separators=(",", ":"))
    with _log_lock:
        _log_fh.write(line + "\n")


def session_started(user: str = "") -> None:
    SESSIONS_STARTED.inc()
    log_event("session_started", user=user)


def session_lost(reason: str, user: str = "", served_by: str = "") -> None:
    SESSIONS_LOST.labels(reason=reason).inc()
    log_event("session_lost", reason=reason, user=user, served_by=served_by)


def write_acked(order_id: str, served_by: str = "") -> None:
    WRITES_ACKED.inc()
    log_event("write_acked", id=order_id, served_by=served_by)


_last_lb = {"lb": ""}


def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response: Any = None,
    exception: Any = None,
    context: Any = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    now = time.time()
    intended = (context or {}).get("harness_intended")
    if intended is not None:
        CORRECTED.labels(name).observe(max(0.0, now - intended))
    status = str(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None) or {}
    served_by = headers.get("X-Served-By", "") or "none"
    STATS.record(
        name, request_type, status, served_by, response_time / 1000.0, exception is not None, now
    )
    if exception is not None:
        log_event(
            "failure", name=name, status=status, served_by=served_by, error=str(exception)[:200]
        )
        return
    lb = headers.get("X-LB", "")
    if lb and lb != _last_lb["lb"]:
        if _last_lb["lb"]:
            LB_SWITCH.labels(lb).set(now)
            log_event("lb_switch", lb=lb, previous=_last_lb["lb"])
        _last_lb["lb"] = lb


def fixed_rate(rate: float) -> Any:
    """A wait_time keeping each user on a fixed schedule (1/rate apart). When an answer is late
    the next send is late too; the schedule it should have kept is remembered as the intended
    send time, from which the corrected latency is measured."""
    period = 1.0 / rate

    def wait_time(user: Any) -> float:
        now = time.time()
        nxt = getattr(user, "_harness_next", None)
        nxt = now if nxt is None else nxt + period
        user._harness_next = nxt
        user._harness_intended = nxt
        return max(0.0, nxt - now)

    return wait_time


def _with_intended(original: Any) -> Any:
    def context(user: Any) -> dict[str, Any]:
        ctx = dict(original(user) or {})
        intended = getattr(user, "_harness_intended", None)
        if intended is not None:  # only the first request of a task was scheduled
            ctx["harness_intended"] = intended
            user._harness_intended = None
        return ctx

    return context


def _users_sampler(environment: Any) -> None:
    while True:
        runner = environment.runner
        if runner is not None:
            USERS.labels(ROLE).set(runner.user_count)
        time.sleep(0.5)


def _on_init(environment: Any, **_: Any) -> None:
    global _log_fh
    host, _sep, port = ADDR.rpartition(":")
    start_http_server(int(port), addr=host, registry=REGISTRY)
    if EVENT_LOG:
        _log_fh = open(EVENT_LOG, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    for cls in environment.user_classes or []:
        if cls.__name__ in USER_WEIGHTS:
            cls.weight = int(USER_WEIGHTS[cls.__name__])
        if RATE:
            cls.wait_time = fixed_rate(RATE)
            cls.context = _with_intended(cls.context)
    import gevent

    gevent.spawn(_users_sampler, environment)


def _on_test_start(environment: Any, **_: Any) -> None:
    STARTED.set(time.time())
    log_event("test_start")


def _on_test_stop(environment: Any, **_: Any) -> None:
    FINISHED.set(time.time())
    log_event("test_stop")


def _on_quitting(environment: Any, **_: Any) -> None:
    deadline = time.monotonic() + RELEASE_TIMEOUT
    while RELEASE_FILE and not os.path.exists(RELEASE_FILE) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _log_fh is not None:
        _log_fh.flush()


if ADDR:
    events.init.add_listener(_on_init)
    events.request.add_listener(_on_request)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)
