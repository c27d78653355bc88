"""Who holds each VIP, sampled every 50 ms from inside each LB container by one long-running
exec (cheaper and steadier than an exec per poll), timestamped as the lines arrive.

An exec ends with its container: a dead LB holds nothing, and when the container runs again
(restarted, started by a restore, even created again) a new exec takes over, so the holder is
known again. A paused LB holds nothing either (it answers nobody, whatever its interface
says) until it is unpaused: the Docker events stream tells (`on_event`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from docker.models.containers import Container

from harness.watch.follow import Follow, close_quietly

PERIOD = 0.05
GRACE = 30  # the loop inside the container outlives the load by this much, then ends by itself


class VipWatcher:
    def __init__(
        self,
        service: str,
        vip: str,
        containers: Mapping[str, Container],
        exporter: Any,
        max_seconds: float,
        *,
        instances: list[str] | None = None,
    ) -> None:
        """`containers`: instance → container (the run's live map may be passed whole: it is
        looked in again when an LB runs again); `instances`: the service's LB instances (by
        default every key of `containers`); `max_seconds`: how long to keep watching."""
        self.service, self.vip, self.exporter = service, vip, exporter
        self.containers = containers
        self.instances = list(instances) if instances is not None else list(containers)
        self.deadline = time.time() + float(max_seconds) + GRACE
        self.follows = {i: Follow(i, containers.get(i), containers) for i in self.instances}
        self.holding: dict[str, bool] = {}
        self.paused: set[str] = set()
        self.sampled: dict[str, float] = {}  # instance -> when its exec last reported
        self.attaches: dict[str, int] = dict.fromkeys(self.instances, 0)
        self.history: list[tuple[float, str | None]] = []  # (ts, holder) at each change
        self.streams: dict[str, Any] = {}
        self.lock = threading.Lock()

    def start(self) -> None:
        for instance in self.instances:
            threading.Thread(
                target=self._follow, args=(instance,), daemon=True, name=f"vip-{instance}"
            ).start()

    def stop(self) -> None:
        for f in self.follows.values():
            f.stop()
        for stream in list(self.streams.values()):
            close_quietly(stream)

    def holder(self) -> str | None:
        with self.lock:
            return next((i for i, h in sorted(self.holding.items()) if h), None)

    def on_event(self, ts: float, instance: str, action: str) -> None:
        """A Docker event about one of the run's containers."""
        if instance not in self.follows:
            return
        if action == "pause":
            with self.lock:
                self.paused.add(instance)
            self._set(instance, False, ts)
        elif action == "unpause":
            with self.lock:
                self.paused.discard(instance)
        elif action in ("die", "oom"):
            self._set(instance, False, ts)
        if action in ("start", "unpause", "restart"):
            self.follows[instance].wake.set()

    def _sample(self, instance: str, holds: bool, ts: float) -> None:
        with self.lock:
            self.sampled[instance] = ts
            if instance in self.paused:
                return  # a line written just before the freeze
        self._set(instance, holds, ts)

    def _set(self, instance: str, holds: bool, ts: float) -> None:
        with self.lock:
            before = next((i for i, h in sorted(self.holding.items()) if h), None)
            if self.holding.get(instance) == holds:
                return
            self.holding[instance] = holds
            self.exporter.vip_holder.labels(self.service, instance).set(1 if holds else 0)
            if holds:
                self.exporter.vip_acquired.labels(self.service, instance).set(ts)
            after = next((i for i, h in sorted(self.holding.items()) if h), None)
            if after != before:
                self.history.append((ts, after))

    def _follow(self, instance: str) -> None:
        follow = self.follows[instance]
        while time.time() < self.deadline:
            c = follow.wait_for(("running",))
            if c is None:
                return
            self.attaches[instance] += 1
            before = self.sampled.get(instance)
            self._exec(instance, c)
            # the exec ended: the container died (it holds nothing), or was removed
            self._set(instance, False, time.time())
            if follow.stopped.is_set():
                return
            # an exec that reported nothing failed at once: do not hammer the engine
            follow.wake.wait(0.2 if self.sampled.get(instance) != before else 1.0)

    def _exec(self, instance: str, container: Container) -> None:
        script = (
            f"end={int(self.deadline)}; "
            f"while [ $(date +%s) -lt $end ]; do "
            f"if ip -4 -o addr show dev eth0 | grep -q ' {self.vip}/'; then echo 1; else echo 0; fi; "
            f"sleep {PERIOD}; done"
        )
        try:
            _, stream = container.exec_run(["sh", "-c", script], stream=True)
            self.streams[instance] = stream
            if self.follows[instance].stopped.is_set():
                stream.close()
            buf = b""
            for chunk in stream:
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._sample(instance, line.strip() == b"1", time.time())
        except Exception:  # noqa: BLE001 - container died or was paused: it holds nothing
            pass
        finally:
            self.streams.pop(instance, None)
