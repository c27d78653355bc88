"""Follows a service registry's log (images/registry/registry-start.sh prints every PUT and
DELETE under the services prefix the moment etcd delivers it) and exports each as a timestamp
gauge, `harness_registry_event_timestamp_seconds{registry, server, action}`, with Docker's
nanosecond timestamp on the line. A DELETE is the registry's own deregistration instant: the
lease of an instance whose heartbeats stopped expired. The gateway's ejection is reported
against it. Following, re-attaching after a restart and skipping lines seen before are the LB
log watcher's (this is one, reading other lines)."""

from __future__ import annotations

import re
from typing import Any

from harness.kinds.descriptor import LogLines
from harness.watch.logs import LogWatcher

# `registry: PUT /harness/services/web/web-1 10.x.y.z:80`, `registry: DELETE /harness/.../web-1`
EVENT = re.compile(r"^registry: (PUT|DELETE) /\S*?/([A-Za-z0-9._-]+)(?: |$)")


class RegistryWatcher(LogWatcher):
    def __init__(self, *args: Any, **kw: Any) -> None:
        """LogWatcher's arguments; the lines it reads are its own, none of an LB's."""
        super().__init__(*args, **(kw | {"lines": LogLines()}))
        self.registered: dict[str, bool] = {}  # server -> registered now

    def on_line(self, ts: float, msg: str) -> None:
        m = EVENT.match(msg)
        if m is None:
            return
        action, server = m.group(1), m.group(2)
        self.registered[server] = action == "PUT"
        self.exporter.registry_event.labels(self.instance, server, action).set(ts)
        self.events.append((ts, "registry", server, action))
