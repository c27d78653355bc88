"""Runs inside the Locust process. Exports what the verdict needs as Prometheus metrics, labelled
by request name, status and serving node (X-Served-By), and keeps a JSONL event log with
millisecond timestamps. Locustfiles report app-level facts through `session_started()`,
`session_lost()` and `write_acked()`.

Active only when the harness set HARNESS_METRICS_ADDR, so the same locustfile runs under raw
`locust` too (that is how bench/load measures the plugin's cost).

Nothing the load sends is lost. Attribution rule: a request is counted when it completes (or
when the load stops, if still in flight); the verdict's windows tile the run, so every request
lands in a judged window. In detail:

- every request through Locust's HTTP clients (FastHttpSession, HttpSession) is tracked from
  the moment it is sent until its request event fires;
- a request whose `catch_response` check raised (Locust then drops the event) is counted as a
  failure when the with-block exits, with the exception as its error;
- a request still in flight when its user is stopped (Locust kills user greenlets at the stop,
  after `--stop-timeout`, and a killed request never fires its event) is counted as a failure,
  status "0", error "aborted: in flight when the load stopped", when it is killed; whatever is
  still tracked when the test stops is counted the same way, before
  `harness_load_finished_timestamp_seconds` is set, so the final scrape includes it.
  (Locust's kill is asynchronous: a user stopped while waiting may wake and send one more
  request before the kill lands. Such a request, sent after the load began to stop and cut by
  the harness at once, is not counted at all: the system was never given a chance to answer.)

Per user (every user class's `context()` is wrapped, so each request event carries the user's
key, `harness_user`):
- `harness_lb_switch_timestamp_seconds{lb}`: the first success of a wave of users moving onto
  `lb` (a user's success through another LB than its previous success); users following the
  same failover keep it, and a later wave back and forth starts a new one;
- `harness_clients_served_again_timestamp_seconds`: the latest instant a user was first served
  after its last failure, +Inf while any user's most recent request failed (0 if none ever
  failed): failover is complete when every user has been served again;
- `harness_last_failure_timestamp_seconds`: the completion time of the latest failure.
The bookkeeping is plain dicts exported at scrape time (see requeststats.py).

End of run: on `quitting` the process waits until the harness has seen the final figures in
Prometheus (it creates HARNESS_RELEASE_FILE), so no count is lost between the last scrape and exit.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from locust import events
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from harness.load import eventlog, userclass
from harness.load.eventlog import log_event
from harness.load.requeststats import ClientState, RequestStats
from harness.load.tracking import (
    ABORTED,
    RequestAborted,
    _inflight,
    _stopping,
    _tracked_exit,
    _tracked_request,
    abort_in_flight,
    track_requests,
    user_key,
)
from harness.observe import metrics

__all__ = [  # what locustfiles, tests and bench use (some of it lives in tracking.py)
    "ABORTED",
    "CLIENTS",
    "REGISTRY",
    "STATS",
    "RequestAborted",
    "_tracked_exit",
    "_tracked_request",
    "abort_in_flight",
    "instrument_user_class",
    "log_event",
    "read_checked",
    "session_lost",
    "session_started",
    "session_written",
    "user_key",
    "write_acked",
    "write_failed",
]

ADDR = os.environ.get("HARNESS_METRICS_ADDR", "")
ROLE = os.environ.get("HARNESS_LOCUST_ROLE", "local")  # local | master | worker
USER_WEIGHTS = json.loads(os.environ.get("HARNESS_USER_WEIGHTS", "{}"))
RATE = float(os.environ.get("HARNESS_RATE", "0") or 0)
EVENT_LOG = os.environ.get("HARNESS_EVENT_LOG", "")
RELEASE_FILE = os.environ.get("HARNESS_RELEASE_FILE", "")
RELEASE_TIMEOUT = float(os.environ.get("HARNESS_RELEASE_TIMEOUT", "60"))
# A worker on another machine cannot see the release file: it is released once Prometheus has
# scraped its final figures this many times (0: wait for the file).
RELEASE_SCRAPES = int(os.environ.get("HARNESS_RELEASE_SCRAPES", "0") or 0)
# ...and no sooner than this many seconds after its test stopped (the master and the other
# workers finish a moment later, and the run needs a scrape of every process after all did)
RELEASE_LINGER = float(os.environ.get("HARNESS_RELEASE_LINGER", "0") or 0)

REGISTRY = CollectorRegistry(auto_describe=True)
STATS = RequestStats()  # requests, failures, latency, last response per node: the hot path
REGISTRY.register(STATS)
CLIENTS = ClientState()  # per user: LB switches, served again after a failure, last failure
REGISTRY.register(CLIENTS)


def _counter(m: metrics.Metric) -> Counter:
    return Counter(m.name, m.help, m.labels, registry=REGISTRY)


def _gauge(m: metrics.Metric) -> Gauge:
    return Gauge(m.name, m.help, m.labels, registry=REGISTRY)


SESSIONS_STARTED = _counter(metrics.SESSIONS_STARTED)
SESSIONS_LOST = _counter(metrics.SESSIONS_LOST)
WRITES_ACKED = _counter(metrics.WRITES_ACKED)
READS_CHECKED = _counter(metrics.READS_CHECKED)
READS_STALE = _counter(metrics.READS_STALE)
WRITE_RESUMED = _gauge(metrics.WRITE_RESUMED)
_write_failing: set[str] = set()  # stores whose latest write failed, in this process
USERS = _gauge(metrics.USERS)
STARTED = _gauge(metrics.LOAD_STARTED)
FINISHED = _gauge(metrics.LOAD_FINISHED)
WORKERS = _gauge(metrics.WORKERS_CONNECTED)
_now, _inflight_pop = time.time, _inflight.pop  # bound once for _on_request
_EMPTY: dict[str, Any] = {}  # _on_request's context or headers when there are none (read only)


class _FinalScrapes:
    """Counts the scrapes served after the test stopped (a collector that exports nothing)."""

    count = 0

    def collect(self) -> list[Any]:
        if _stopped["at"]:
            self.count += 1
        return []


_stopped = {"at": 0.0}
FINAL_SCRAPES = _FinalScrapes()
REGISTRY.register(FINAL_SCRAPES)


def session_started(user: str = "") -> None:
    SESSIONS_STARTED.inc()
    log_event("session_started", user=user)


def session_lost(reason: str, user: str = "", served_by: str = "") -> None:
    SESSIONS_LOST.labels(reason=reason).inc()
    log_event("session_lost", reason=reason, user=user, served_by=served_by)


def write_acked(order_id: str, served_by: str = "") -> None:
    WRITES_ACKED.inc()
    _write_ok("db")
    log_event("write_acked", id=order_id, served_by=served_by)


def write_failed(store: str) -> None:
    """A write to `store` (db, session) failed: the next acknowledged one resumes writing."""
    _write_failing.add(store)


def _write_ok(store: str) -> None:
    if store in _write_failing:
        _write_failing.discard(store)
        WRITE_RESUMED.labels(store=store).set(time.time())
        log_event("write_resumed", store=store)


def session_written(user: str = "") -> None:
    """The session store took a write of the user's session (`POST /session` answered 200)."""
    _write_ok("session")


def read_checked(order_id: str, stale: bool, read_from: str = "", served_by: str = "") -> None:
    """A read-back of the user's own acknowledged write; `stale`: it was not there yet."""
    READS_CHECKED.labels(read_from=read_from or "unknown").inc()
    if stale:
        READS_STALE.labels(read_from=read_from or "unknown").inc()
        log_event("read_stale", id=order_id, read_from=read_from, served_by=served_by)


def _on_request(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int = 0,
    response: Any = None,
    exception: Any = None,
    context: Any = None,
    start_time: float | None = None,
    url: str | None = None,
    **_: Any,  # Locust's arguments are all named above, so this dict stays empty (cheaper)
) -> None:
    now = _now()
    if context:
        token = context.get("harness_req")
        if token is not None and _inflight_pop(token, None) is None:
            return  # counted already: aborted at the stop, or its check raised
        user, intended = context.get("harness_user"), context.get("harness_intended")
    else:
        context, user, intended = _EMPTY, None, None
    status = str(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None)
    if headers is None:  # not `or {}`: geventhttpclient's Headers counts its fields for that
        headers = _EMPTY
    served_by = headers.get("X-Served-By", "") or "none"
    failed = exception is not None
    STATS.record(
        name, request_type, status, served_by, response_time / 1000.0, failed, now, intended
    )
    if failed:
        if not context.get("harness_stop_artifact"):
            CLIENTS.record(user, False, "", now)
        log_event(
            "failure", name=name, status=status, served_by=served_by, error=str(exception)[:200]
        )
        return
    lb = headers.get("X-LB", "")
    previous = CLIENTS.record(user, True, lb, now)
    if previous:
        log_event("lb_switch", lb=lb, previous=previous, user=user)


def instrument_user_class(cls: Any) -> None:
    userclass.instrument_user_class(cls, CLIENTS, RATE)


def _users_sampler(environment: Any) -> None:
    while True:
        runner = environment.runner
        if runner is not None:
            USERS.labels(ROLE).set(runner.user_count)
            if ROLE == "master" and not _stopped["at"]:  # the count during the test
                WORKERS.set(sum(1 for w in runner.clients.values() if w.state != "missing"))
        time.sleep(0.5)


_serving = {"up": False}


def serve_metrics() -> None:
    if not _serving["up"]:
        host, _sep, port = ADDR.rpartition(":")
        start_http_server(int(port), addr=host, registry=REGISTRY)
        _serving["up"] = True


def _on_init(environment: Any, **_: Any) -> None:
    serve_metrics()
    if EVENT_LOG:
        eventlog.open_log(EVENT_LOG)
    for cls in environment.user_classes or []:
        if cls.__name__ in USER_WEIGHTS:
            cls.weight = int(USER_WEIGHTS[cls.__name__])
        instrument_user_class(cls)
    import gevent

    gevent.spawn(_users_sampler, environment)


def _on_test_start(environment: Any, **_: Any) -> None:
    _stopping["at"] = _stopped["at"] = 0.0
    STARTED.set(time.time())
    log_event("test_start")


def _on_test_stopping(environment: Any, **_: Any) -> None:
    _stopping["at"] = time.time()


def _on_test_stop(environment: Any, **_: Any) -> None:
    aborted = abort_in_flight()  # before the finish instant: the final scrape must include them
    FINISHED.set(time.time())
    _stopped["at"] = time.time()
    log_event("test_stop", aborted=aborted)


def _on_quitting(environment: Any, **_: Any) -> None:
    deadline = time.monotonic() + RELEASE_TIMEOUT
    while RELEASE_FILE and not os.path.exists(RELEASE_FILE) and time.monotonic() < deadline:
        time.sleep(0.1)
    while RELEASE_SCRAPES and time.monotonic() < deadline:
        if (
            FINAL_SCRAPES.count >= RELEASE_SCRAPES
            and time.time() - _stopped["at"] >= RELEASE_LINGER
        ):
            break
        time.sleep(0.1)
    eventlog.flush()


if ADDR:
    # A worker joining from another machine is scraped from the moment it starts: Locust fires
    # `init` only once the master has acknowledged it, which took ~10 s across a veth pair.
    if os.environ.get("HARNESS_METRICS_EARLY"):
        serve_metrics()
    track_requests()
    events.init.add_listener(_on_init)
    events.request.add_listener(_on_request)
    events.test_start.add_listener(_on_test_start)
    events.test_stopping.add_listener(_on_test_stopping)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)
