"""Follows the LB containers' logs (Docker's own timestamps, nanoseconds) and turns the lines
that matter into timestamp gauges: HAProxy's `Server app/web-1 is DOWN`, Nginx's `upstream
server temporarily disabled ... upstream: "http://10.x.y.z:80/..."` and Keepalived's `(VI_1)
Entering MASTER STATE`. These are the LB's and Keepalived's own account of when they acted,
which is what ejection and failover are measured against.

Nginx's passive checks log the ejection but never a return: a peer disabled at `t` is skipped
while `now - checked <= fail_timeout`, with `checked` the failure's time in Nginx's whole
seconds, so it is tried again at `floor(t) + fail_timeout + 1`. That instant is exported as the
server's UP; if the server is still dead the next request to it logs the ejection again.

A (re)started LB process starts with every server UP (HAProxy's `New worker (n) forked`,
Nginx's `start worker processes`, or a container that started again): servers known DOWN are
then UP at that instant. The stream ends when the container stops; the watcher waits for it to
run again (see `follow.py`) and resumes from the last line it handled, skipping lines seen."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from docker.models.containers import Container

from harness import kinds
from harness.kinds.descriptor import LogLines
from harness.watch.follow import Follow, close_quietly, parse_ts, started_at

__all__ = ["LogWatcher", "parse_ts"]

DEFAULT_FAIL_TIMEOUT = 10.0  # Nginx's default
EXPIRE_EVERY = 0.1
EXPIRE_LAG = 0.5  # a line reaches us within this; Nginx's UP is declared only after it
SEEN_WINDOW = 5.0  # seconds of log time whose lines are remembered to skip them on a re-attach
RESUME_OVERLAP = 1.0  # re-read this much before the last line (stdout/stderr interleave)


class LogWatcher:
    def __init__(
        self,
        container: Container | None,
        instance: str,
        exporter: Any,
        since: float,
        *,
        upstreams: Mapping[str, str] | None = None,
        fail_timeout: float | Mapping[str, float] = DEFAULT_FAIL_TIMEOUT,
        containers: Mapping[str, Container] | None = None,
        lines: LogLines | None = None,
    ) -> None:
        """`upstreams`: upstream address (IP, or IP:port) → backend instance, for an Nginx LB;
        `fail_timeout`: Nginx's, in seconds, for every server or per backend instance;
        `containers`: the run's live instance → container map, looked in again when the LB
        container runs again; `lines`: what the LB kind's log says (its descriptor's), by default
        every kind's."""
        self.lines = lines if lines is not None else kinds.log_lines()
        self.container, self.instance, self.exporter, self.since = (
            container,
            instance,
            exporter,
            since,
        )
        self.upstreams = dict(upstreams or {})
        self.fail_timeout = fail_timeout
        self.follow = Follow(instance, container, containers)
        self.servers: dict[str, str] = {}
        self.events: list[tuple[float, str, str, str]] = []  # (ts, what, name, state)
        self.down_until: dict[str, float] = {}  # Nginx: server -> when Nginx tries it again
        self.last_ts: float | None = None
        self.seen: dict[str, float] = {}  # recent raw lines -> ts, to skip them on a re-attach
        self.attached_start: float | None = None  # StartedAt of the container we follow
        self.attaches = 0
        self.stream: Any = None
        self.lock = threading.RLock()
        self.thread = threading.Thread(target=self._run, name=f"logs-{instance}", daemon=True)
        self.expirer = threading.Thread(
            target=self._expire_loop, name=f"logs-expire-{instance}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        if self.upstreams:
            self.expirer.start()

    def stop(self) -> None:
        self.follow.stop()
        close_quietly(self.stream)

    def wake(self) -> None:
        """Look at the container now (a Docker event about it arrived)."""
        self.follow.wake.set()

    def states(self) -> dict[str, str]:
        with self.lock:
            return dict(self.servers)

    # ------------------------------------------------------------------ lines

    def handle(self, line: str) -> None:
        """One raw log line (Docker's timestamp first): each is handled once, also across a
        re-attach that reads the last second again."""
        ts_text, _, msg = line.partition(" ")
        try:
            ts = parse_ts(ts_text)
        except ValueError:
            return
        with self.lock:
            if line in self.seen:
                return  # handled before a re-attach
            self._remember(line, ts)
            self.on_line(ts, msg)

    def on_line(self, ts: float, msg: str) -> None:
        """A new line's message, at `ts`, under the lock: what the LB and Keepalived said."""
        self.expire(ts)
        if m := _search(self.lines.backend, msg):
            # HAProxy reports a change on stderr and in its log: the state dedupes it
            self._set_server(m.group(2), m.group(3), ts)
        elif m := _search(self.lines.disabled, msg):
            self._disabled(m.group(1).strip("[]"), m.group(2), ts)
        elif m := _search(self.lines.vip, msg):
            state = m.group(2)
            self.exporter.keepalived_state.labels(self.instance, state).set(ts)
            self.events.append((ts, "keepalived", self.instance, state))
        elif _search(self.lines.started, msg):
            self.restarted(ts)

    def _remember(self, line: str, ts: float) -> None:
        self.seen[line] = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
        if len(self.seen) > 512:
            horizon = self.last_ts - SEEN_WINDOW
            self.seen = {k: t for k, t in self.seen.items() if t >= horizon}

    def _set_server(self, server: str, state: str, ts: float) -> None:
        if self.servers.get(server) == state:
            return
        self.servers[server] = state
        self.exporter.backend_state.labels(self.instance, server, state).set(ts)
        self.exporter.backend_up.labels(self.instance, server).set(1 if state == "UP" else 0)
        self.events.append((ts, "backend", server, state))

    def _fail_timeout(self, server: str) -> float:
        ft = self.fail_timeout
        return float(ft.get(server, DEFAULT_FAIL_TIMEOUT) if isinstance(ft, Mapping) else ft)

    def _disabled(self, host: str, port: str | None, ts: float) -> None:
        server = (
            self.upstreams.get(f"{host}:{port}")
            or self.upstreams.get(host)
            or (f"{host}:{port}" if port else host)
        )
        again = math.floor(ts) + self._fail_timeout(server) + 1
        self.down_until[server] = max(again, self.down_until.get(server, again))
        self._set_server(server, "DOWN", ts)

    def expire(self, now: float) -> None:
        """Nginx servers whose `fail_timeout` has passed by `now` are UP again, at that instant."""
        with self.lock:
            for server, at in sorted(self.down_until.items(), key=lambda kv: kv[1]):
                if at <= now:
                    del self.down_until[server]
                    self._set_server(server, "UP", at)

    def restarted(self, ts: float) -> None:
        """The LB process started afresh at `ts`: it sees every server UP until it learns
        otherwise."""
        with self.lock:
            self.expire(ts)
            self.down_until.clear()
            self.events.append((ts, "process", self.instance, "started"))
            for server, state in sorted(self.servers.items()):
                if state != "UP":
                    self._set_server(server, "UP", ts)

    def _expire_loop(self) -> None:
        while not self.follow.stopped.wait(EXPIRE_EVERY):
            self.expire(time.time() - EXPIRE_LAG)

    # ------------------------------------------------------------------ the stream

    def _since(self) -> float | None:
        since = (
            self.since if self.last_ts is None else max(self.since, self.last_ts - RESUME_OVERLAP)
        )
        return since if since > 0 else None

    def _run(self) -> None:
        while True:
            c = self.follow.wait_for(("running", "paused"))
            if c is None:
                return
            start = started_at(c)
            if (
                self.attached_start is not None
                and start is not None
                and start > self.attached_start
            ):
                self.restarted(start)  # the container started again while we were away
            self.attached_start = start if start is not None else self.attached_start
            self.attaches += 1
            self._follow(c)
            if self.follow.stopped.is_set():
                return
            # The stream ended: the container stopped (wait for it to run again), or the
            # engine dropped it (re-attach after a breath).
            self.follow.wake.wait(0.2)

    def _follow(self, c: Container) -> None:
        buf = b""
        try:
            self.stream = c.logs(stream=True, follow=True, timestamps=True, since=self._since())
            if self.follow.stopped.is_set():
                self.stream.close()
            for chunk in self.stream:
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.handle(line.decode(errors="replace"))
        except Exception:  # noqa: BLE001 - the container went away: wait for it again
            return
        finally:
            self.stream = None


def _search(patterns: tuple[re.Pattern[str], ...], msg: str) -> re.Match[str] | None:
    return next((m for p in patterns if (m := p.search(msg))), None)
