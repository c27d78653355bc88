"""Who holds each VIP, sampled every 50 ms from inside each LB container by one long-running
exec (cheaper and steadier than an exec per poll), timestamped as the lines arrive."""

from __future__ import annotations

import threading
import time
from typing import Any

from docker.models.containers import Container

PERIOD = 0.05


class VipWatcher:
    def __init__(
        self,
        service: str,
        vip: str,
        containers: dict[str, Container],
        exporter: Any,
        max_seconds: float,
    ) -> None:
        self.service, self.vip, self.exporter = service, vip, exporter
        self.containers = containers
        self.max_seconds = int(max_seconds) + 30  # the loop inside the container ends by itself
        self.holding: dict[str, bool] = {}
        self.history: list[tuple[float, str | None]] = []  # (ts, holder) at each change
        self.lock = threading.Lock()

    def start(self) -> None:
        for instance, container in self.containers.items():
            threading.Thread(
                target=self._follow, args=(instance, container), daemon=True, name=f"vip-{instance}"
            ).start()

    def holder(self) -> str | None:
        with self.lock:
            return next((i for i, h in sorted(self.holding.items()) if h), None)

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

    def _follow(self, instance: str, container: Container) -> None:
        script = (
            f"end=$(( $(date +%s) + {self.max_seconds} )); "
            f"while [ $(date +%s) -lt $end ]; do "
            f"if ip -4 -o addr show dev eth0 | grep -q ' {self.vip}/'; then echo 1; else echo 0; fi; "
            f"sleep {PERIOD}; done"
        )
        try:
            _, stream = container.exec_run(["sh", "-c", script], stream=True)
            buf = b""
            for chunk in stream:
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._set(instance, line.strip() == b"1", time.time())
        except Exception:  # noqa: BLE001 - container died or was paused: it holds nothing
            pass
        self._set(instance, False, time.time())
