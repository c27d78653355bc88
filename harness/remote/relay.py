"""Latency on hosts without `netem`: a link written `via: toxiproxy` is slowed by the harness's
own Toxiproxy (harness/toxiproxy), run by the harness on its machine. On each `from` host a
tagged `iptables -t nat OUTPUT` DNAT rule sends new connections to the `to` host's port to the
proxy instead, which forwards them to the real address with a latency toxic. Replies come back
through the same connection, so nothing on the way needs forwarding or a route.

Rolling back deletes the DNAT rules (new connections go direct again) and the toxic; the proxy
keeps serving the connections it already carries until the run ends, so none is cut. After a
SIGKILL the proxy is gone with the harness and `harness gc` deletes the journaled rules."""

from __future__ import annotations

import shlex
import socket
from typing import Any

from harness.remote.targets import Host
from harness.toxiproxy import ToxiproxyClient, ToxiproxyServer


def local_address_toward(address: str) -> str:
    """This machine's source address for packets to `address` (what the hosts can reach)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((address, 9))
        return str(s.getsockname()[0])


def dnat(to: Host, port: int, relay: str, tag: str) -> str:
    """The nat rule (without -I/-D) sending `to`:`port` connections to the relay."""
    return (
        f"OUTPUT -p tcp -d {shlex.quote(to.address)} --dport {port} -m comment --comment "
        f"{shlex.quote(tag)} -j DNAT --to-destination {relay}"
    )


class Relays:
    """The run's Toxiproxy (started at the first latency fault) and its proxies."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.server: ToxiproxyServer | None = None
        self.client: Any = None

    def _api(self) -> Any:
        if self.server is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            self.server = ToxiproxyServer("127.0.0.1", port, seed=self.seed).start_background()
            self.client = ToxiproxyClient(self.server.base_url)
        return self.client

    def open(
        self, name: str, listen_host: str, upstream: str, latency: float, jitter: float
    ) -> str:
        """A proxy `name` on `listen_host` (any free port) to `upstream`, slowed by `latency`
        (+- `jitter`) seconds on the way back; its listen address."""
        api = self._api()
        proxy = api.create_proxy(name, f"{listen_host}:0", upstream)
        api.add_toxic(
            name,
            "latency",
            {"latency": round(latency * 1000), "jitter": round(jitter * 1000)},
            stream="downstream",
            name="harness-latency",
        )
        return str(proxy["listen"])

    def calm(self, name: str) -> None:
        """The toxic removed; connections it carries stay up."""
        if self.client is not None:
            try:
                self.client.remove_toxic(name, "harness-latency")
            except Exception:  # noqa: BLE001 - already gone
                pass

    def close(self) -> None:
        if self.server is not None:
            self.server.stop_background()
            self.server = None
