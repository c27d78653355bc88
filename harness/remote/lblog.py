"""An LB's log read over SSH (harness/remote/watch.py). Its server UP/DOWN lines name each
backend as the LB's own config does; the recovery watcher and the verdict speak of instances
(`web-1`, the first host of `web`), so every name is mapped to the host it means:

- the instance's name (`server web-1 10.0.0.21:80`, as the harness's own configs write it);
- the host's address or name as `hosts:` writes it, with or without a port (`server
  10.0.0.21:80 ...`, Nginx's `upstream: "http://10.0.0.21:80/..."`);
- the first label of that host name (`server web1 web1.example:80` for ssh://ops@web1.example).

A name that is none of these (or that two hosts share) stays as written and is kept in
`unknown`: while such a server is not UP the run's watcher says why, with the rule, and the
recovery watcher waits instead of guessing which host went down."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from harness.kinds.descriptor import LogLines
from harness.remote.targets import Host
from harness.watch.logs import LogWatcher


def server_names(backends: Sequence[Host]) -> dict[str, str]:
    """Each name an LB may give a backend host -> its instance (ambiguous names left out)."""
    seen: dict[str, set[str]] = {}
    for h in backends:
        names = {h.instance, h.address}
        try:
            ipaddress.ip_address(h.address)
        except ValueError:
            names.add(h.address.split(".")[0])
        for name in names:
            seen.setdefault(name, set()).add(h.instance)
    return {name: next(iter(insts)) for name, insts in seen.items() if len(insts) == 1}


class HostLog(LogWatcher):
    """A LogWatcher fed line by line (no container), naming servers by instance."""

    def __init__(
        self,
        instance: str,
        exporter: Any,
        since: float,
        lines: LogLines | None,
        backends: Sequence[Host],
    ) -> None:
        self.names = server_names(backends)
        self.backends = [h.instance for h in backends]
        self.unknown: set[str] = set()
        super().__init__(None, instance, exporter, since, upstreams=self.names, lines=lines)

    def _set_server(self, server: str, state: str, ts: float) -> None:
        known = self.names.get(server) or self.names.get(server.rsplit(":", 1)[0])
        if known is None:
            self.unknown.add(server)
        super()._set_server(known or server, state, ts)

    def unmapped(self) -> list[str]:
        """Why this log cannot be read as the hosts' states: servers it names that are no host,
        while they are not UP (one line, with the naming rule)."""
        with self.lock:
            bad = sorted(s for s in self.unknown if self.servers.get(s) != "UP")
        if not bad:
            return []
        return [
            f"{self.instance}'s log names server {', '.join(bad)}, which is no host of its "
            f"backends ({', '.join(self.backends)}): name the LB's servers after these instances "
            "or their hosts' addresses (README: Existing hosts)"
        ]
