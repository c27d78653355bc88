"""The Docker events stream of the run's containers: the ground-truth instants at which they
died, started, paused or were unpaused, as the engine saw them (nanosecond `timeNano`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from harness.runtime import labels
from harness.runtime.docker import client
from harness.watch.follow import close_quietly

ACTIONS = {"die", "start", "pause", "unpause", "kill", "stop", "restart", "oom"}


class EventWatcher:
    def __init__(self, run_id: str, exporter: Any, since: float) -> None:
        self.run_id, self.exporter, self.since = run_id, exporter, since
        self.events: list[tuple[float, str, str]] = []  # (ts, instance, action)
        # called with (ts, instance, action) for each event: watchers re-attach on "start"
        self.listeners: list[Callable[[float, str, str], None]] = []
        self.stream: Any = None
        self.thread = threading.Thread(target=self._run, name="docker-events", daemon=True)

    def start(self) -> None:
        self.stream = client().events(
            decode=True,
            since=int(self.since),
            filters={"label": f"{labels.RUN}={self.run_id}", "type": "container"},
        )
        self.thread.start()

    def stop(self) -> None:
        close_quietly(self.stream)

    def _run(self) -> None:
        try:
            for ev in self.stream:
                action = str(ev.get("Action") or ev.get("status") or "")
                if action not in ACTIONS:
                    continue
                attrs = (ev.get("Actor") or {}).get("Attributes") or {}
                instance = attrs.get(labels.INSTANCE) or attrs.get("name", "?")
                ts = int(ev.get("timeNano", 0)) / 1e9
                self.events.append((ts, instance, action))
                self.exporter.container_event.labels(instance, action).set(ts)
                if action in ("start", "unpause"):
                    self.exporter.container_running.labels(instance).set(1)
                elif action in ("die", "pause", "stop", "kill", "oom"):
                    self.exporter.container_running.labels(instance).set(0)
                for listener in list(self.listeners):
                    try:
                        listener(ts, instance, action)
                    except Exception:  # noqa: BLE001 - one listener's bug stops no stream
                        pass
        except Exception:  # noqa: BLE001 - the stream was closed
            return
