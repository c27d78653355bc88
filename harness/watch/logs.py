"""Follows the LB containers' logs (Docker's own timestamps, nanoseconds) and turns the lines
that matter into timestamp gauges: HAProxy's `Server app/web-1 is DOWN` and Keepalived's
`(VI_1) Entering MASTER STATE`. These are the LB's and Keepalived's own account of when they
acted, which is what ejection and failover are measured against."""

from __future__ import annotations

import re
import threading
from datetime import datetime
from typing import Any

from docker.models.containers import Container

SERVER = re.compile(r"Server (\S+)/(\S+) is (UP|DOWN)")
KEEPALIVED = re.compile(r"\((\S+)\) Entering (\w+) STATE")


def parse_ts(text: str) -> float:
    """Docker's RFC 3339 timestamp with nanoseconds → unix seconds."""
    date, _, frac = text.rstrip("Z").partition(".")
    base = datetime.fromisoformat(date + "+00:00").timestamp()
    return base + float("0." + (frac or "0"))


class LogWatcher:
    def __init__(self, container: Container, instance: str, exporter: Any, since: float) -> None:
        self.container, self.instance, self.exporter, self.since = (
            container,
            instance,
            exporter,
            since,
        )
        self.servers: dict[str, str] = {}
        self.events: list[tuple[float, str, str, str]] = []  # (ts, what, name, state)
        self.thread = threading.Thread(target=self._run, name=f"logs-{instance}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def handle(self, line: str) -> None:
        ts_text, _, msg = line.partition(" ")
        try:
            ts = parse_ts(ts_text)
        except ValueError:
            return
        if m := SERVER.search(msg):
            server, state = m.group(2), m.group(3)
            if (
                self.servers.get(server) != state
            ):  # HAProxy reports a change on stderr and in its log
                self.servers[server] = state
                self.exporter.backend_state.labels(self.instance, server, state).set(ts)
                self.exporter.backend_up.labels(self.instance, server).set(
                    1 if state == "UP" else 0
                )
                self.events.append((ts, "backend", server, state))
        elif m := KEEPALIVED.search(msg):
            state = m.group(2)
            self.exporter.keepalived_state.labels(self.instance, state).set(ts)
            self.events.append((ts, "keepalived", self.instance, state))

    def _run(self) -> None:
        buf = b""
        try:
            stream = self.container.logs(
                stream=True, follow=True, timestamps=True, since=int(self.since)
            )
            for chunk in stream:
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.handle(line.decode(errors="replace"))
        except Exception:  # noqa: BLE001 - the container went away: nothing more to follow
            return
