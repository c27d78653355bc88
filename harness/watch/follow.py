"""The container behind an instance name, followed across stops, restarts and re-creation.

A log stream or an exec ends when its container stops, and a container object goes stale when
something removes the container and creates it again under the same name. A watcher holds a
`Follow` instead: it waits until the instance runs again (woken at once by the Docker events
stream, or by polling as a fallback) and hands back the current container object: the one in
the run's live instance map if that is still there, else the newest container carrying the
run's and the instance's labels."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from docker.errors import NotFound
from docker.models.containers import Container

from harness.runtime import labels
from harness.runtime.docker import client

POLL = 1.0  # seconds between looks when no Docker event wakes the watcher


class Follow:
    def __init__(
        self,
        instance: str,
        container: Container | None,
        containers: Mapping[str, Container] | None = None,
    ) -> None:
        self.instance, self.container, self.containers = instance, container, containers
        self.wake = threading.Event()
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()

    def current(self) -> Container | None:
        """The instance's container now, reloaded; None when it exists no more (or the engine
        did not answer)."""
        candidates = []
        if self.containers is not None and self.containers.get(self.instance) is not None:
            candidates.append(self.containers[self.instance])
        if self.container is not None and all(c is not self.container for c in candidates):
            candidates.append(self.container)
        for c in candidates:
            try:
                c.reload()
            except NotFound:
                continue
            except Exception:  # noqa: BLE001 - the engine did not answer: try again later
                return None
            self.container = c
            return c
        found = self._by_labels()
        if found is not None:
            self.container = found
        return found

    def _by_labels(self) -> Container | None:
        """The newest container carrying the run's and this instance's labels (a fault or a
        restore created it again)."""
        known: dict[str, str] = {}
        if self.container is not None:
            try:
                known = dict(self.container.labels or {})  # from the attributes last loaded
            except Exception:  # noqa: BLE001 - never loaded
                known = {}
        run = known.get(labels.RUN)
        if not run:
            return None
        instance = known.get(labels.INSTANCE) or self.instance
        try:
            found = client().containers.list(
                all=True,
                filters={"label": [f"{labels.RUN}={run}", f"{labels.INSTANCE}={instance}"]},
            )
        except Exception:  # noqa: BLE001 - the engine did not answer
            return None
        found.sort(key=lambda c: str(c.attrs.get("Created", "")), reverse=True)
        return found[0] if found else None

    def wait_for(self, states: tuple[str, ...] = ("running",)) -> Container | None:
        """Block until the instance's container is in one of `states`; None once stopped."""
        while not self.stopped.is_set():
            c = self.current()
            if c is not None and c.status in states:
                return c
            self.wake.wait(POLL)
            self.wake.clear()
        return None


def close_quietly(stream: Any) -> None:
    """Close a Docker stream (logs, events, exec output) that may already be dead or None."""
    if stream is None:
        return
    try:
        stream.close()
    except Exception:  # noqa: BLE001 - closing a dead stream
        pass


def parse_ts(text: str) -> float:
    """Docker's RFC 3339 timestamp with nanoseconds → unix seconds."""
    date, _, frac = text.rstrip("Z").partition(".")
    base = datetime.fromisoformat(date + "+00:00").timestamp()
    return base + float("0." + (frac or "0"))


def started_at(container: Any) -> float | None:
    """When the container (last) started, from Docker's `State.StartedAt`."""
    try:
        return parse_ts(str(container.attrs["State"]["StartedAt"]))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
