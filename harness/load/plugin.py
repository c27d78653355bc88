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

import inspect
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from gevent import GreenletExit
from locust import events
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from harness.load.requeststats import ClientState, RequestStats
from harness.observe import metrics

ADDR = os.environ.get("HARNESS_METRICS_ADDR", "")
ROLE = os.environ.get("HARNESS_LOCUST_ROLE", "local")  # local | master | worker
USER_WEIGHTS = json.loads(os.environ.get("HARNESS_USER_WEIGHTS", "{}"))
RATE = float(os.environ.get("HARNESS_RATE", "0") or 0)
EVENT_LOG = os.environ.get("HARNESS_EVENT_LOG", "")
RELEASE_FILE = os.environ.get("HARNESS_RELEASE_FILE", "")
RELEASE_TIMEOUT = float(os.environ.get("HARNESS_RELEASE_TIMEOUT", "60"))

ABORTED = "aborted: in flight when the load stopped"

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

_log_lock = threading.Lock()
_log_fh: Any = None


class RequestAborted(Exception):
    """The request was still in flight when its user was stopped."""


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


_user_ids = itertools.count(1)


def user_key(user: Any) -> int:
    """A key for one simulated user, unique within the process (unlike id(), never reused)."""
    try:
        return int(user._harness_uid)
    except AttributeError:
        uid = user._harness_uid = next(_user_ids)
        return uid


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
    ctx = context or {}
    token = ctx.get("harness_req")
    if token is not None and _inflight.pop(token, None) is None:
        return  # counted already: aborted at the stop, or its check raised
    status = str(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None) or {}
    served_by = headers.get("X-Served-By", "") or "none"
    failed = exception is not None
    STATS.record(
        name,
        request_type,
        status,
        served_by,
        response_time / 1000.0,
        failed,
        now,
        ctx.get("harness_intended"),
    )
    user = ctx.get("harness_user")
    if failed:
        if not ctx.get("harness_stop_artifact"):
            CLIENTS.record(user, False, "", now)
        log_event(
            "failure", name=name, status=status, served_by=served_by, error=str(exception)[:200]
        )
        return
    lb = headers.get("X-LB", "")
    previous = CLIENTS.record(user, True, lb, now)
    if previous:
        log_event("lb_switch", lb=lb, previous=previous, user=user)


# Requests sent and not yet counted: token -> (request event, method, name, user key, intended
# send time, start). Plain dict, no lock: under gevent nothing preempts these few operations.
_inflight: dict[int, tuple[Any, Any, str, int | None, float | None, float]] = {}
_tokens = itertools.count(1)
_stopping = {"at": 0.0}  # when the load began to stop (0: it has not)


def _settle(token: int, exc: BaseException | None, response: Any = None) -> None:
    """Count a tracked request whose event never fired, as a failure: aborted (exc None, or the
    user's greenlet was killed) or raised (the exception escaped the request or its check)."""
    entry = _inflight.pop(token, None)
    if entry is None:
        return
    event, method, name, user, intended, start = entry
    exception: Exception
    aborted = exc is None or isinstance(exc, GreenletExit)
    if aborted:
        exception, response = RequestAborted(ABORTED), None
    elif isinstance(exc, Exception):
        exception = exc
    else:
        exception = RuntimeError(f"{type(exc).__name__}: {exc}")
    ctx: dict[str, Any] = {"harness_user": user}
    if aborted and _stopping["at"] and start >= _stopping["at"]:
        # sent after the stop began (a user woke from its wait between Locust's check and its
        # kill) and killed by Locust at once: the harness cut it, the system was never given
        # the chance to answer it, so it is not a request of the test at all
        log_event("stop_artifact", name=name)
        return
    if intended is not None:
        ctx["harness_intended"] = intended
    event.fire(
        request_type=method,
        name=name,
        response_time=(time.time() - start) * 1000.0,
        response_length=0,
        response=response,
        exception=exception,
        context=ctx,
        start_time=start,
        url=name,
    )


def abort_in_flight() -> int:
    """Count every request still in flight as aborted; returns how many."""
    tokens = list(_inflight)
    for token in tokens:
        _settle(token, None)
    return len(tokens)


def _tracked_request(original: Callable[..., Any]) -> Callable[..., Any]:
    params = list(inspect.signature(original).parameters)  # self, method, url, name, ...
    name_at, context_at = params.index("name") - 3, params.index("context") - 3

    def request(self: Any, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        token = next(_tokens)
        if len(args) > context_at:  # context passed positionally
            listed = list(args)
            listed[context_at] = {**(listed[context_at] or {}), "harness_req": token}
            args = tuple(listed)
        else:
            kwargs["context"] = {**(kwargs.get("context") or {}), "harness_req": token}
        user = self.user
        name = kwargs.get("name") or (args[name_at] if len(args) > name_at else None)
        _inflight[token] = (
            self.request_event,
            method,
            str(name or self.request_name or url),
            None if user is None else user_key(user),
            None if user is None else getattr(user, "_harness_intended", None),
            time.time(),
        )
        try:
            return original(self, method, url, *args, **kwargs)
        except BaseException as e:
            _settle(token, e)
            raise

    request._harness = True  # type: ignore[attr-defined]
    return request


def _tracked_exit(original: Callable[..., Any]) -> Callable[..., Any]:
    def __exit__(self: Any, exc: Any, value: Any, tb: Any) -> Any:
        result = original(self, exc, value, tb)
        if exc is not None:  # without an exception Locust always fires the event
            token = (self.request_meta.get("context") or {}).get("harness_req")
            if token in _inflight:
                _settle(token, value if value is not None else exc(), self)
        return result

    __exit__._harness = True  # type: ignore[attr-defined]
    return __exit__


def track_requests() -> None:
    """Wrap Locust's HTTP clients so every request sent is counted exactly once."""
    from locust.clients import HttpSession
    from locust.clients import ResponseContextManager as HttpRCM
    from locust.contrib.fasthttp import FastHttpSession
    from locust.contrib.fasthttp import ResponseContextManager as FastRCM

    for session in (FastHttpSession, HttpSession):
        if not getattr(session.request, "_harness", False):
            session.request = _tracked_request(session.request)  # type: ignore[method-assign]
    for rcm in (FastRCM, HttpRCM):
        if not getattr(rcm.__exit__, "_harness", False):
            rcm.__exit__ = _tracked_exit(rcm.__exit__)  # type: ignore[method-assign]


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


def _with_harness_context(original: Any) -> Any:
    """Every request event carries the user's key; under a fixed rate the first request of a
    task also carries its intended send time."""

    def context(user: Any) -> dict[str, Any]:
        ctx = original(user)
        ctx = dict(ctx) if ctx else {}
        ctx["harness_user"] = user_key(user)
        intended = getattr(user, "_harness_intended", None)
        if intended is not None:  # only the first request of a task was scheduled
            ctx["harness_intended"] = intended
            user._harness_intended = None
        return ctx

    context._harness = True  # type: ignore[attr-defined]
    return context


def _retiring(original: Any) -> Any:
    """A user stopped while the load goes on (a ramp-down) leaves the served-again bookkeeping."""

    def on_stop(user: Any) -> None:
        try:
            original(user)
        finally:
            uid = getattr(user, "_harness_uid", None)
            if uid is not None and not _stopping["at"]:
                CLIENTS.retire(uid)

    on_stop._harness = True  # type: ignore[attr-defined]
    return on_stop


def instrument_user_class(cls: Any) -> None:
    if not getattr(cls.context, "_harness", False):
        cls.context = _with_harness_context(cls.context)
    if not getattr(cls.on_stop, "_harness", False):
        cls.on_stop = _retiring(cls.on_stop)
    if RATE:
        cls.wait_time = fixed_rate(RATE)


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
        instrument_user_class(cls)
    import gevent

    gevent.spawn(_users_sampler, environment)


def _on_test_start(environment: Any, **_: Any) -> None:
    _stopping["at"] = 0.0
    STARTED.set(time.time())
    log_event("test_start")


def _on_test_stopping(environment: Any, **_: Any) -> None:
    _stopping["at"] = time.time()


def _on_test_stop(environment: Any, **_: Any) -> None:
    aborted = abort_in_flight()  # before the finish instant: the final scrape must include them
    FINISHED.set(time.time())
    log_event("test_stop", aborted=aborted)


def _on_quitting(environment: Any, **_: Any) -> None:
    deadline = time.monotonic() + RELEASE_TIMEOUT
    while RELEASE_FILE and not os.path.exists(RELEASE_FILE) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _log_fh is not None:
        _log_fh.flush()


if ADDR:
    track_requests()
    events.init.add_listener(_on_init)
    events.request.add_listener(_on_request)
    events.test_start.add_listener(_on_test_start)
    events.test_stopping.add_listener(_on_test_stopping)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)
