"""Stand-ins the unit tests share: Docker (a container and the client), the harness's exporter,
Prometheus and Grafana. Each records what it was asked, so a test can check the calls."""

from __future__ import annotations

import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from docker.errors import APIError, NotFound

from harness.errors import InfrastructureError
from harness.runtime import labels

# ---------------------------------------------------------------- Docker

PROCS = {"haproxy": ["haproxy", "keepalived"], "web": ["php-fpm8.2", "nginx"]}


class FakeContainer:
    """A docker `Container`: records every call in `calls`; `fail` names the calls that raise
    APIError; `gone` makes `reload()` raise NotFound (removed); `alive = False` makes `exec_run`
    raise (a paused or dead node).

    `exec_run` runs just enough of `ip -4 -o addr show dev eth0` (answers `addrs`), `pkill` and
    `pgrep` (over `procs`; a SIGTERMed process shows up in three more pgreps), and `sh -c '…;
    exec <name> …'` (starts it). With `stream=True` it yields what the test puts in `lines`; None
    ends the stream (the container died). `logs()` streams the next list in `streams`; its end is
    the container stopping (`ended` is set)."""

    def __init__(
        self,
        instance: str = "c",
        ip: str | None = None,
        kind: str = "",
        *,
        name: str | None = None,
        status: str = "running",
        created: str = "2026-01-01",
        started: str | None = None,
        run_id: str = "r1",
    ) -> None:
        self.instance = instance
        self.name, self.id = name or f"harness-{run_id}-{instance}", f"id-{instance}"
        self.status = status
        self.addrs = [ip] if ip else []
        self.procs = set(PROCS.get(kind, []))
        self.labels = {labels.RUN: run_id, labels.INSTANCE: instance}
        self.attrs: dict[str, Any] = {"Created": created}
        if started is not None:
            self.attrs["State"] = {"StartedAt": started}
        self.calls: list[tuple[Any, ...]] = []
        self.fail: set[str] = set()  # call names that raise APIError
        self.dying: dict[str, int] = {}  # process -> pgreps it still shows up in (SIGTERMed)
        self.gone = False
        self.alive = True
        self.lines: queue.Queue[bytes | None] = queue.Queue()  # what a streamed exec yields
        self.execs = 0  # streamed execs started
        self.streams: list[list[str]] = []  # log streams, one per (re)start
        self.log_calls: list[dict[str, Any]] = []
        self.ended = threading.Event()  # a log stream ended

    def _call(self, *call: Any) -> None:
        self.calls.append(call)
        if call[0] in self.fail:
            raise APIError(call[0], explanation=f"{call[0]} refused")

    def named(self, what: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == what]

    def reload(self) -> None:
        if self.gone:
            raise NotFound("gone")

    def kill(self, signal: str = "SIGKILL") -> None:
        self._call("kill", signal)
        self.status = "exited"

    def stop(self, timeout: int = 10) -> None:
        self._call("stop", timeout)
        self.status = "exited"

    def start(self) -> None:
        self._call("start")
        self.status = "running"

    def restart(self, timeout: int = 10) -> None:
        self._call("restart", timeout)

    def pause(self) -> None:
        self._call("pause")
        self.status = "paused"

    def unpause(self) -> None:
        self._call("unpause")
        self.status = "running"

    def exec_run(self, cmd: list[str], detach: bool = False, stream: bool = False) -> Any:
        if not self.alive:
            raise RuntimeError("container is paused")
        if stream:
            self.execs += 1

            def gen() -> Iterator[bytes]:
                while (line := self.lines.get()) is not None:
                    yield line

            return None, gen()
        self._call("exec", tuple(cmd), detach)
        if cmd[0] == "ip":
            lines = [f"2: eth0    inet {a}/24 brd x scope global eth0" for a in self.addrs]
            return 0, "\n".join(lines).encode()
        if cmd[0] in ("pkill", "pgrep"):
            name = cmd[cmd.index("-x") + 1]
            found = name in self.procs
            if cmd[0] == "pkill" and cmd[2] == "KILL":
                self.procs.discard(name)
            elif cmd[0] == "pkill":
                self.dying[name] = 3
            elif name in self.dying:
                self.dying[name] -= 1
                if self.dying[name] < 0:
                    self.procs.discard(name)
                    del self.dying[name]
            return (0 if found else 1), b""
        if cmd[:2] == ["sh", "-c"]:
            self.procs.add(cmd[2].split("exec ", 1)[1].split()[0])  # "…; exec <name> …"
            return 0, b""
        raise AssertionError(f"unexpected exec {cmd}")

    def logs(self, **kw: Any) -> Iterator[bytes]:
        self.log_calls.append(kw)
        lines = self.streams.pop(0)

        def gen() -> Iterator[bytes]:
            for line in lines:
                yield (line + "\n").encode()
            self.status = "exited"
            self.ended.set()

        return gen()


class FakeDocker:
    """`docker.from_env()`: `containers.get(id or name)` and `containers.list(**kw)` over the
    given containers (`listed` keeps each list call's keyword arguments)."""

    def __init__(self, containers: Iterable[FakeContainer] = ()) -> None:
        self.containers = self  # the client's container collection is this object too
        self.all = list(containers)
        self.listed: list[dict[str, Any]] = []

    def get(self, ref: str) -> FakeContainer:
        for c in self.all:
            if ref in (c.id, c.name):
                return c
        raise NotFound(ref)

    def list(self, **kw: Any) -> list[FakeContainer]:
        self.listed.append(kw)
        return list(self.all)


# ---------------------------------------------------------------- the harness's exporter


class FakeGauge:
    """A prometheus_client Gauge: `set(v)` and `labels(...).set(v)` are recorded."""

    def __init__(self, name: str, sets: list[tuple[str, tuple[str, ...], float]]) -> None:
        self.name, self.sets = name, sets

    def labels(self, *values: str) -> Any:
        gauge = self

        class Child:
            def set(self, v: float) -> None:
                gauge.sets.append((gauge.name, values, v))

        return Child()

    def set(self, v: float) -> None:
        self.sets.append((self.name, (), v))

    @property
    def values(self) -> list[float]:
        """What was set without labels, in order."""
        return [v for n, lv, v in self.sets if n == self.name and not lv]


class FakeExporter:
    """The harness's exporter (`harness.observe.exporter.HarnessExporter`): every gauge it is
    asked for records into `sets` as (gauge attribute, label values, value). `only`: the gauges
    it has (asking for another raises AttributeError, as an older exporter would)."""

    def __init__(self, only: Iterable[str] | None = None) -> None:
        self.sets: list[tuple[str, tuple[str, ...], float]] = []
        self.only = set(only) if only is not None else None
        self.gauges: dict[str, FakeGauge] = {}

    def __getattr__(self, name: str) -> FakeGauge:
        if name.startswith("_") or (self.only is not None and name not in self.only):
            raise AttributeError(name)
        return self.gauges.setdefault(name, FakeGauge(name, self.sets))

    def of(self, name: str) -> list[tuple[tuple[str, ...], float]]:
        return [(values, v) for n, values, v in self.sets if n == name]


# ---------------------------------------------------------------- Prometheus

Answer = float | None | Callable[[str], float | None]


class FakeProm:
    """`harness.observe.prom.Prometheus`: `answers` maps a substring of a query to its value
    (or to a function of the query); the first that matches wins, no match is no data (None).
    `error`: every query raises it (Prometheus unreachable). Every query is kept in `queries`."""

    def __init__(
        self, answers: dict[str, Answer] | None = None, error: Exception | None = None
    ) -> None:
        self.answers = answers or {}
        self.error = error
        self.queries: list[str] = []

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        self.queries.append(expr)
        if self.error is not None:
            raise self.error
        for part, answer in self.answers.items():
            if part in expr:
                return answer(expr) if callable(answer) else answer
        return None

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        v = self.scalar(expr, at)
        return [] if v is None else [{"metric": {}, "value": [at or time.time(), str(v)]}]

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        self.scalar(expr)
        return []

    def wait_for(
        self, expr: str, timeout: float, predicate: Any = lambda v: v is not None
    ) -> float | None:
        try:
            v = self.scalar(expr)
        except InfrastructureError:
            return None
        return v if predicate(v) else None


# ---------------------------------------------------------------- Grafana

GRAFANA_TOKEN = "glsa_test_token_123"
ANNOTATION_KEYS = {"time", "timeEnd", "tags", "text", "dashboardUID", "dashboardId", "panelId"}
DASHBOARD_KEYS = {"dashboard", "overwrite", "folderUid", "folderId", "message"}


class FakeGrafana:
    """Grafana's HTTP API on 127.0.0.1, checking request shapes against the documentation:
    ``POST /api/dashboards/db`` ({dashboard, overwrite, folderUid?, message?}),
    ``POST /api/annotations`` ({time (ms), timeEnd?, tags, text, dashboardUID?, panelId?}),
    ``PATCH /api/annotations/{id}`` ({time?, timeEnd?, tags?, text?}), ``GET /api/health``;
    Bearer token auth (`GRAFANA_TOKEN`) on every call. What it rejects lands in `problems`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.annotations: dict[int, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        self.delay = 0.0
        self._next_id = 1
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                with fake._lock:
                    fake.requests.append(
                        {
                            "method": method,
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                        }
                    )
                if fake.delay:
                    time.sleep(fake.delay)
                if self.headers.get("Authorization") != f"Bearer {GRAFANA_TOKEN}":
                    return self._reply(401, {"message": "Unauthorized"})
                if method in ("POST", "PATCH") and not (
                    self.headers.get("Content-Type", "").startswith("application/json")
                ):
                    fake.problems.append(f"{method} {self.path}: not JSON")
                    return self._reply(400, {"message": "bad content type"})
                try:
                    code, reply = fake.route(method, self.path, body)
                except AssertionError as exc:
                    fake.problems.append(f"{method} {self.path}: {exc}")
                    code, reply = 400, {"message": f"bad request: {exc}"}
                self._reply(code, reply)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self._handle("POST")

            def do_PATCH(self) -> None:  # noqa: N802 - http.server's name
                self._handle("PATCH")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/api/health":
            return 200, {"commit": "abc", "database": "ok", "version": "10.4.2"}
        if method == "POST" and path == "/api/dashboards/db":
            assert isinstance(body, dict), "body must be an object"
            assert set(body) <= DASHBOARD_KEYS, f"unknown keys {set(body) - DASHBOARD_KEYS}"
            dash = body.get("dashboard")
            assert isinstance(dash, dict) and dash.get("title"), "dashboard with a title required"
            assert isinstance(body.get("overwrite"), bool), "overwrite must be a bool"
            assert dash.get("id") is None, "id must be null to create/overwrite by uid"
            if "folderUid" in body:
                assert isinstance(body["folderUid"], str)
            uid = dash.get("uid") or "generated"
            version = self.dashboards.get(uid, {}).get("version", 0) + 1
            self.dashboards[uid] = {"dashboard": dash, "version": version, "body": body}
            return 200, {
                "id": 1,
                "uid": uid,
                "url": f"/d/{uid}/slug",
                "status": "success",
                "version": version,
                "slug": "slug",
            }
        if method == "POST" and path == "/api/annotations":
            self._check_annotation(body, create=True)
            with self._lock:
                ann_id = self._next_id
                self._next_id += 1
                self.annotations[ann_id] = dict(body)
            return 200, {"message": "Annotation added", "id": ann_id}
        m = re.fullmatch(r"/api/annotations/(\d+)", path)
        if method == "PATCH" and m:
            self._check_annotation(body, create=False)
            ann_id = int(m.group(1))
            if ann_id not in self.annotations:
                return 404, {"message": "Could not find annotation to update"}
            self.annotations[ann_id].update(body)
            return 200, {"message": "Annotation patched"}
        return 404, {"message": "Not found"}

    @staticmethod
    def _check_annotation(body: Any, *, create: bool) -> None:
        assert isinstance(body, dict), "body must be an object"
        assert set(body) <= ANNOTATION_KEYS, f"unknown keys {set(body) - ANNOTATION_KEYS}"
        for key in ("time", "timeEnd"):
            if key in body:
                assert type(body[key]) is int, f"{key} must be an integer (epoch ms)"
                assert body[key] > 10**12, f"{key} must be epoch milliseconds"
        if "time" in body and "timeEnd" in body:
            assert body["timeEnd"] >= body["time"]
        if "tags" in body:
            assert isinstance(body["tags"], list) and all(isinstance(t, str) for t in body["tags"])
        if create:
            assert isinstance(body.get("text"), str) and body["text"], "text required"
            assert "time" in body
        else:
            assert body, "empty patch"
            assert body.get("tags", ["x"]) != [], "a patch must not wipe the tags"

    def start(self) -> FakeGrafana:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
