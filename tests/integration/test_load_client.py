"""Real Locust (the harness's own Locust process, harness.load.process.LocustProcess) against a
tiny HTTP server on loopback: nothing the client side sees may be lost. Each case scrapes the
plugin's /metrics once the load has finished and before the process is released, i.e. the
final figures the verdict reads.

No Docker: the server is a thread in the test process, everything stays on 127.0.0.1."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.load.process import LocustProcess
from harness.spec.models import Load

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = str(ROOT / "locustfiles" / "session_user.py")
HTML = b"<!doctype html><html><body><form action=/login>Sign in</form></body></html>"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # block until the test ends


@dataclass
class App:
    """What the server answers: `route(handler, path, user, n)` -> Answer, where `user` is the
    session's user (cookie, or the login body) and `n` that user's request number (1-based)."""

    route: Callable[[Handler, str, str, int], Answer]
    seen: Counter[str] = field(default_factory=Counter)  # path -> requests received
    per_user: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    marks: dict[str, float] = field(default_factory=dict)  # free use by a route


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    app: App

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        user = ""
        cookie = self.headers.get("Cookie") or ""
        for part in cookie.split(";"):
            k, _, v = part.strip().partition("=")
            if k == "sid":
                user = v
        if path == "/login":
            try:
                user = json.loads(body)["user"]
            except (ValueError, KeyError, TypeError):
                user = ""
        with self.app.lock:
            self.app.seen[path] += 1
            self.app.per_user[user] += 1
            n = self.app.per_user[user]
        answer = self.app.route(self, path, user, n)
        if answer.hang:
            self.app.release.wait(120)
        headers = dict(answer.headers)
        if path == "/login" and answer.status == 200:
            headers["Set-Cookie"] = f"sid={user}; Path=/"
        self.send_response(answer.status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the client went away (a killed request)
            pass


@pytest.fixture
def serve() -> Iterator[Callable[[App], str]]:
    servers: list[tuple[ThreadingHTTPServer, App, threading.Thread]] = []

    def start(app: App) -> str:
        handler = type("AppHandler", (Handler,), {"app": app})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        servers.append((srv, app, thread))
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv, app, thread in servers:
        app.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]
    events: list[dict[str, Any]]
    log: str

    def total(self, metric: str, /, **labels: str) -> float:
        return sum(
            v
            for (n, lbl), v in self.metrics.items()
            if n == metric and all(dict(lbl).get(k) == want for k, want in labels.items())
        )

    def value(self, name: str) -> float:
        return self.metrics[(name, ())]

    def has(self, metric: str, /, **labels: str) -> bool:
        return any(
            n == metric and all(dict(lbl).get(k) == want for k, want in labels.items())
            for (n, lbl) in self.metrics
        )


def _scrape(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    with opener.open(url, timeout=2) as r:
        return str(r.read().decode())


def run_locust(tmp_path: Path, url: str, users: int, spawn_rate: float, seconds: float) -> Result:
    """The load as the harness runs it; returns the first scrape after the load finished."""
    addr = f"127.0.0.1:{_free_port()}"
    load = Load(locustfile=LOCUSTFILE, users=users, spawn_rate=spawn_rate, duration=seconds)
    proc = LocustProcess(load, url, "t-load-client", tmp_path, [addr])
    proc.start()
    try:
        proc.wait_started(timeout=60)
        deadline = time.monotonic() + seconds + 60
        text = ""
        while time.monotonic() < deadline:
            assert proc.running(), f"Locust exited before release: {proc.log_tail()}"
            try:
                text = _scrape(f"http://{addr}/metrics")
            except OSError:
                text = ""
            metrics = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            if metrics.get(("harness_load_finished_timestamp_seconds", ()), 0) > 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the load never finished: {proc.log_tail()}")
        proc.release(timeout=20)
    finally:
        proc.stop()
    events = [
        json.loads(line)
        for path in sorted(proc.run_dir.glob("events*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    return Result(metrics, events, proc.log_path.read_text(errors="replace"))


def _login_ok(user: str) -> Answer:
    return Answer(200, json.dumps({"user": user}).encode(), {"Content-Type": "application/json"})


def test_an_html_sign_in_page_is_a_lost_session_and_nothing_vanishes(
    tmp_path: Path, serve: Callable[[App], str]
) -> None:
    def route(h: Handler, path: str, user: str, n: int) -> Answer:
        if path == "/login":
            return _login_ok(user)
        if path == "/whoami":  # a 200 that is no identity: the session is gone
            return Answer(200, HTML, {"Content-Type": "text/html", "X-Served-By": "web-1"})
        return Answer(200, b"ok", {"Content-Type": "text/plain", "X-Served-By": "web-1"})

    app = App(route)
    users = 4
    res = run_locust(tmp_path, serve(app), users=users, spawn_rate=users, seconds=3)

    lost = res.total("harness_sessions_lost_total", reason="not_identity")
    whoami_fail = res.total("harness_request_failures_total", name="/whoami", status="200")
    assert lost > 0
    assert whoami_fail == lost  # every such answer is both a failure and a lost session
    assert res.total("harness_request_failures_total", name="/orders", status="200") == 0
    # every lost session forces one re-login (the stop may cut the last ones short)
    assert lost <= res.total("harness_sessions_started_total") <= users + lost
    # no request vanished: what the server saw, the client counted (at most the in-flight
    # requests of the users at the stop may be counted by the client and never reach the server)
    for path in ("/login", "/whoami", "/orders"):
        client = res.total("harness_requests_total", name=path)
        assert app.seen[path] <= client <= app.seen[path] + users, (path, app.seen, client)
    assert app.seen["/whoami"] > 0 and app.seen["/orders"] > 0
    # the latency of failures is kept apart from the latency of successes (a request the stop
    # cut short, status 0, is a failure too)
    assert res.total("harness_request_duration_seconds_count", name="/whoami", outcome="error") == (
        res.total("harness_request_failures_total", name="/whoami")
    )
    assert res.total("harness_request_failures_total", name="/whoami") - whoami_fail <= users
    assert res.total("harness_request_duration_seconds_count", name="/whoami", outcome="ok") == 0
    assert res.total("harness_request_duration_seconds_count", name="/orders", outcome="ok") > 0
    assert res.value("harness_last_failure_timestamp_seconds") > 0
    assert "Traceback" not in res.log, res.log[-2000:]
    assert any(e["event"] == "session_lost" and e["reason"] == "not_identity" for e in res.events)


def test_a_request_hanging_past_the_end_is_counted_as_aborted(
    tmp_path: Path, serve: Callable[[App], str]
) -> None:
    def route(h: Handler, path: str, user: str, n: int) -> Answer:
        if path == "/login":
            return _login_ok(user)
        if path == "/whoami":  # hangs longer than the load (2 s) plus the stop timeout (2 s)
            return Answer(hang=True)
        return Answer(200, b"ok")

    app = App(route)
    users = 3
    res = run_locust(tmp_path, serve(app), users=users, spawn_rate=users, seconds=2)

    # each user is stuck in exactly one /whoami when the load stops: counted, as a failure,
    # in the scrape that already shows the load finished
    aborted = res.total("harness_request_failures_total", name="/whoami", status="0")
    assert aborted == users == app.seen["/whoami"]
    assert res.total("harness_requests_total", name="/whoami") == users
    assert (
        res.total("harness_request_duration_seconds_count", name="/whoami", outcome="error")
        == users
    )
    # their users were never served again
    assert math.isinf(res.value("harness_clients_served_again_timestamp_seconds"))
    finished = res.value("harness_load_finished_timestamp_seconds")
    assert 0 < res.value("harness_last_failure_timestamp_seconds") <= finished
    errors = [e["error"] for e in res.events if e["event"] == "failure" and e["name"] == "/whoami"]
    assert errors == ["aborted: in flight when the load stopped"] * users


def _lb_route(stuck: set[str]) -> Callable[[Handler, str, str, int], Answer]:
    """Per user: requests 1-5 through lb-1, 6-8 fail (the LB is gone), then lb-2; users in
    `stuck` fail for good after their 5th request."""

    def route(h: Handler, path: str, user: str, n: int) -> Answer:
        app = h.app
        if n <= 5:
            lb = "lb-1"
        elif n <= 8 or user in stuck:
            return Answer(503, b"down", {"X-LB": "lb-1"})
        else:
            lb = "lb-2"
            with app.lock:
                if f"lb2:{user}" not in app.marks:
                    app.marks[f"lb2:{user}"] = time.time()
        body = json.dumps({"user": user}).encode()
        headers = {"X-LB": lb, "X-Served-By": f"web-{lb}", "Content-Type": "application/json"}
        return Answer(200, body, headers)

    return route


def test_lb_switch_and_served_again_are_per_user(
    tmp_path: Path, serve: Callable[[App], str]
) -> None:
    app = App(_lb_route(set()))
    users = 4
    # users start 0.5 s apart, so one is still on lb-1 while another is on lb-2 already: one
    # "last LB" per process would see switches back to lb-1
    res = run_locust(tmp_path, serve(app), users=users, spawn_rate=2, seconds=4)

    recovered = [ts for key, ts in app.marks.items() if key.startswith("lb2:")]
    assert len(recovered) == users, app.marks
    assert res.has("harness_lb_switch_timestamp_seconds", lb="lb-2")
    assert not res.has("harness_lb_switch_timestamp_seconds", lb="lb-1")
    switch = res.total("harness_lb_switch_timestamp_seconds", lb="lb-2")
    served = res.value("harness_clients_served_again_timestamp_seconds")
    # the last user to be served again after its failures sets served-again; the first user
    # to move onto lb-2 sets the switch (the others follow the same failover)
    assert max(recovered) <= served < max(recovered) + 1.0
    assert min(recovered) <= switch < min(recovered) + 1.0 and switch < max(recovered)
    assert served < res.value("harness_load_finished_timestamp_seconds")
    assert res.value("harness_last_failure_timestamp_seconds") < served
    assert res.total("harness_request_failures_total", status="503") == 3 * users


def test_one_user_never_served_again_keeps_failover_incomplete(
    tmp_path: Path, serve: Callable[[App], str]
) -> None:
    stuck: set[str] = set()

    def route(h: Handler, path: str, user: str, n: int) -> Answer:
        with h.app.lock:
            if path == "/login" and not stuck:
                stuck.add(user)  # the first user to log in never gets an answer again
        return _lb_route(stuck)(h, path, user, n)

    app = App(route)
    users = 3
    res = run_locust(tmp_path, serve(app), users=users, spawn_rate=users, seconds=3)

    assert res.has("harness_lb_switch_timestamp_seconds", lb="lb-2")  # the others moved
    assert math.isinf(res.value("harness_clients_served_again_timestamp_seconds"))
    assert len([k for k in app.marks if k.startswith("lb2:")]) == users - 1
