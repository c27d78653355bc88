"""Proxy listeners and the per-connection data path.

Each accepted client gets a ``Connection``: two asyncio protocols (the client socket and
the upstream socket) and two ``Link``s (upstream = client to server, downstream = server
to client).  A link has two modes:

* **fast path**: no toxic applies to this connection and direction, so ``data_received``
  writes the bytes straight into the other transport; back-pressure is the transports'
  own (the destination's ``pause_writing`` pauses reading on the source).  No task, no
  queue, no copy: this is what keeps an untouched proxy close to a direct connection.
* **toxic path**: chunks are timestamped on arrival into a byte-bounded queue (32 MiB,
  about Toxiproxy's 1024-chunk latency buffer, so a latency toxic does not also limit
  bandwidth) and a pump task pushes each through the toxics active for this connection.

Any change to a proxy's toxics wakes every link (``Proxy.notify``); the pump re-reads the
chain per chunk, so toxics apply to connections that are already open, and it returns the
link to the fast path once no toxic applies and its queue is empty.  As in Toxiproxy, the
end of one direction closes the other socket fully (no half-close is forwarded), a
``reset_peer`` toxic present when a connection opens makes its sockets close with RST
(``SO_LINGER`` 0), and one added later closes the connection normally.  Byte counters move
per chunk, so metrics move while connections stay open.  Standard library only.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ipaddress
import logging
import socket
import struct
from typing import Any, cast

from .toxics import ApiError, Chain, Toxic, ToxicState, close_delay, deadline, run_chain

log = logging.getLogger("harness.toxiproxy")

QUEUE_BYTES = 32 * 1024 * 1024  # toxic path: pause reading the source above this
WRITE_HIGH_WATER = 1024 * 1024  # transport buffer above which the source is paused
CONNECT_TIMEOUT = 10.0


def split_hostport(value: object, what: str) -> tuple[str, int]:
    """Parse ``host:port`` / ``[v6]:port`` as Go's net.SplitHostPort (empty host allowed)."""
    if not isinstance(value, str) or ":" not in value:
        raise ApiError(500, f"address {value}: missing port in address")
    host, _, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ApiError(500, f"address {value}: too many colons in address")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ApiError(500, f"address {value}: invalid port")
    return host, int(port_text)


def join_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _resolve_host(host: str) -> str:
    """An IP for ``host``; names prefer IPv4 like Go's resolver for ``tcp`` listeners."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ApiError(500, f"lookup {host}: no such host") from exc
    addrs = [str(info[4][0]) for info in infos]
    v4 = [a for a in addrs if ":" not in a]
    return (v4 or addrs)[0]


def resolve_listen(value: str) -> str:
    """What Go's ``net.ResolveTCPAddr`` prints for a listen address (names become IPs)."""
    host, port = split_hostport(value or ":0", "listen")
    return join_hostport(_resolve_host(host), port) if host else f":{port}"


def _wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def bind_listener(value: str) -> tuple[socket.socket, str]:
    """Bind as Go's ``net.Listen("tcp", value)``: return the socket and its printed address.

    Wildcards (``""``, ``0.0.0.0``, ``::``) get one dual-stack socket reported as
    ``[::]:port`` (``0.0.0.0:port`` where the host has no IPv6); names resolve to an IP.
    """
    try:
        host, port = split_hostport(value or ":0", "listen")
    except ApiError as exc:
        raise ApiError(500, f"listen tcp: {exc.message}") from exc
    candidates: list[tuple[socket.AddressFamily, str]]
    if _wildcard(host):
        candidates = [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")]
    else:
        ip = _resolve_host(host)
        candidates = [(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)]
    error: OSError | None = None
    for family, ip in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and ip == "::":
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((ip, port))
            sock.listen(4096)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            error = exc
            if _wildcard(host) and family == socket.AF_INET6 and exc.errno != 98:
                continue  # no IPv6 here: Go falls back to IPv4 too
            shown = join_hostport(ip, port) if not _wildcard(host) else value
            text = (exc.strerror or str(exc)).lower()
            raise ApiError(500, f"listen tcp {shown}: bind: {text}") from exc
        return sock, join_hostport(ip, sock.getsockname()[1])
    raise ApiError(500, f"listen tcp {value}: {error}")


class Proxy:
    """One named listener forwarding to one upstream, with its toxics and counters."""

    def __init__(self, name: str, listen: str, upstream: str, seed: str) -> None:
        self.name, self.listen, self.upstream = name, listen, upstream
        self.enabled = False
        self.toxics: dict[str, Toxic] = {}
        self.chains: dict[str, list[Toxic]] = {"upstream": [], "downstream": []}
        self.received = {"upstream": 0, "downstream": 0}
        self.sent = {"upstream": 0, "downstream": 0}
        self.connections_total = 0
        self.connections: set[Connection] = set()
        self._seed = seed
        self._ordinal = 0
        self._server: asyncio.Server | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxic_list(),
        }

    def toxic_list(self) -> list[dict[str, Any]]:
        """Upstream toxics first, then downstream, each in insertion order (as Toxiproxy)."""
        return [t.to_json() for s in ("upstream", "downstream") for t in self.chains[s]]

    def chain_for(self, stream: str) -> list[Toxic]:
        return self.chains[stream]

    def rng_seed(self, ordinal: int, stream: str, toxic: str) -> str:
        """Independent stream per (connection, direction, toxic): order-insensitive replay."""
        return f"{self._seed}:{ordinal}:{stream}:{toxic}"

    def _rebuild(self) -> None:
        for stream in self.chains:
            self.chains[stream] = [t for t in self.toxics.values() if t.direction == stream]

    def set_toxic(self, toxic: Toxic) -> None:
        self.toxics[toxic.name] = toxic
        self._rebuild()
        self.notify()

    def remove_toxic(self, name: str) -> None:
        del self.toxics[name]
        self._rebuild()
        self.notify()

    def clear_toxics(self) -> None:
        self.toxics.clear()
        self._rebuild()
        self.notify()

    def notify(self) -> None:
        """Wake every link so toxic changes (and their timers) apply immediately."""
        for conn in list(self.connections):
            for link in conn.links:
                link.wake()

    async def start(self) -> None:
        if self._server is not None:
            self.enabled = True
            return
        sock, address = bind_listener(self.listen)
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: _ClientSide(self), sock=sock)
        except OSError as exc:
            sock.close()
            raise ApiError(500, f"listen tcp {self.listen}: {exc}") from exc
        self.listen = address
        self.enabled = True
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Stop listening (new connects are refused) and close live connections."""
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self.connections):
            conn.close()
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
            log.info("proxy %s stopped", self.name)

    def _accepted(self, client: _ClientSide) -> Connection:
        conn = Connection(self, self._ordinal, client)
        self._ordinal += 1
        self.connections_total += 1
        self.connections.add(conn)
        return conn


class _Side(asyncio.Protocol):
    """One socket of a connection: feeds the link that reads it, paces the one writing it."""

    transport: asyncio.Transport | None = None
    early: list[bytes]
    reads: Link | None = None  # the link whose source is this socket
    writes: Link | None = None  # the link whose destination is this socket

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.early = []
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport.set_write_buffer_limits(WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        link = self.reads
        if link is not None:
            link.feed(data)
        else:  # before the links exist (a client that speaks first, or a server greeting
            self.early.append(data)  # while the connect completes): replayed once linked

    def eof_received(self) -> bool:
        if self.reads is not None:
            self.reads.feed_eof()
        else:
            self.early.append(b"")  # end of stream, replayed once linked
        return True  # keep the transport: the link decides when to close it

    def connection_lost(self, exc: Exception | None) -> None:
        if self.reads is not None:
            self.reads.feed_eof()
        else:
            self.early.append(b"")
        if self.writes is not None:
            self.writes.dst_lost()

    def pause_writing(self) -> None:
        if self.writes is not None:
            self.writes.set_dst_paused(True)

    def resume_writing(self) -> None:
        if self.writes is not None:
            self.writes.set_dst_paused(False)


class _ClientSide(_Side):
    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.conn: Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self.proxy.enabled:
            transport.close()
            return
        assert self.transport is not None
        self.transport.pause_reading()  # until the upstream is connected, as Toxiproxy
        self.conn = self.proxy._accepted(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.conn is not None and self.reads is None:
            self.conn.close()  # gone before the upstream answered


class Connection:
    """A client connection and its upstream connection, torn down together."""

    def __init__(self, proxy: Proxy, ordinal: int, client: _ClientSide) -> None:
        self.proxy, self.ordinal = proxy, ordinal
        self.client = client
        self.upstream: _Side | None = None
        self.links: list[Link] = []
        self.closed = False
        # Toxiproxy sets SO_LINGER 0 on both sockets when a reset_peer toxic exists as the
        # connection opens: every later close of this connection is then an RST.
        self.linger0 = any(t.type == "reset_peer" for t in proxy.toxics.values())
        self._connecting = asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            host, port = split_hostport(self.proxy.upstream, "upstream")
            _, side = await asyncio.wait_for(
                loop.create_connection(_Side, host, port), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError, ApiError) as exc:
            log.warning("proxy %s: upstream %s unreachable: %s", self.proxy.name, host, exc)
            self.close()
            return
        if self.closed:
            if side.transport is not None:
                side.transport.close()
            return
        self.upstream = side
        client = self.client
        up = Link(self, "upstream", client, side)
        down = Link(self, "downstream", side, client)
        up.other, down.other = down, up
        self.links = [up, down]
        client.reads = side.writes = up
        side.reads = client.writes = down
        if self.linger0:
            for s in (client, side):
                _set_linger0(s)
        for link in self.links:
            link.wake()
        for early_side, link in ((client, up), (side, down)):  # what came before the links
            for data in early_side.early:
                link.feed(data) if data else link.feed_eof()
            early_side.early.clear()
        assert client.transport is not None
        client.transport.resume_reading()

    def close(self, reset: bool = False) -> None:
        """Close both sockets (FIN, or RST when ``reset`` or linger 0) and stop both pumps."""
        if self.closed:
            return
        self.closed = True
        self.proxy.connections.discard(self)
        if self._connecting is not asyncio.current_task():
            self._connecting.cancel()
        for link in self.links:
            link.stop()
        for side in (self.client, self.upstream):
            if side is None or side.transport is None:
                continue
            if reset or self.linger0:
                _set_linger0(side)
                side.transport.abort()
            else:
                side.transport.close()

    def link_done(self) -> None:
        if all(link.done for link in self.links):
            self.close()


def _set_linger0(side: _Side) -> None:
    sock = side.transport.get_extra_info("socket") if side.transport else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Link:
    """One direction of a connection: the fast path, or the queue and its toxic pump."""

    def __init__(self, conn: Connection, stream: str, src: _Side, dst: _Side) -> None:
        self.conn, self.stream, self.src, self.dst = conn, stream, src, dst
        assert src.transport is not None and dst.transport is not None
        self.src_t: asyncio.Transport = src.transport
        self.dst_t: asyncio.Transport = dst.transport
        self.other: Link | None = None
        self.fast = False  # set by the pump once no toxic applies and nothing is queued
        self.queue: collections.deque[tuple[bytes, float]] = collections.deque()
        self.queued = 0
        self.eof = False
        self.done = False
        self.states: dict[str, ToxicState] = {}
        self.pump: asyncio.Task[None] | None = None
        self._event = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._dst_paused = False
        self._src_paused = False
        self._drained: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._received = conn.proxy.received
        self._sent = conn.proxy.sent

    # -- input ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        n = len(data)
        self._received[self.stream] += n
        if self.fast:
            self.dst_t.write(data)
            self._sent[self.stream] += n
            return
        if self.done:
            return
        self.queue.append((data, self._loop.time()))
        self.queued += n
        if self.queued >= QUEUE_BYTES:
            self._update_reading()
        self._event.set()

    def feed_eof(self) -> None:
        if self.eof or self.done:
            return
        self.eof = True
        if self.fast:
            self._finish()
        else:
            self._event.set()

    def wake(self) -> None:
        """Toxics changed (or a timer fired): leave the fast path and let the pump decide."""
        if self.done:
            return
        self.fast = False
        if self.pump is None and not (self.conn.proxy.chains[self.stream] or self.states):
            self.fast = not self.queue and not self.eof
            if self.fast:
                return
        self._event.set()
        if self.pump is None:
            self.pump = self._loop.create_task(self._pump())

    def stop(self) -> None:
        self.done = True
        self.fast = False
        if self._timer is not None:
            self._timer.cancel()
        if self.pump is not None and self.pump is not asyncio.current_task():
            self.pump.cancel()

    # -- flow control --------------------------------------------------------------------
    def set_dst_paused(self, paused: bool) -> None:
        self._dst_paused = paused
        if not paused and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._update_reading()

    def dst_lost(self) -> None:
        """The destination socket is gone: nothing more can be delivered this way."""
        self.set_dst_paused(False)
        if self.done:
            return
        self.stop()
        self.queue.clear()
        if self.other is not None:
            self.other.feed_eof()
        self.conn.link_done()

    def _update_reading(self) -> None:
        pause = self._dst_paused or self.queued >= QUEUE_BYTES
        if pause != self._src_paused and not self.src_t.is_closing():
            self._src_paused = pause
            if pause:
                self.src_t.pause_reading()
            else:
                self.src_t.resume_reading()

    async def _write(self, data: bytes) -> None:
        if self.done:
            return
        self.dst_t.write(data)
        self._sent[self.stream] += len(data)
        if self._dst_paused:
            self._drained = self._loop.create_future()
            await self._drained

    # -- end of stream -------------------------------------------------------------------
    def _finish(self) -> None:
        """All data of this direction delivered: close its destination fully (Toxiproxy
        closes, it does not half-close), which ends the other direction as well."""
        if self.done:
            return
        self.done = True
        self.fast = False
        if self._timer is not None:
            self._timer.cancel()
        if self.conn.linger0:
            self.conn.close()
            return
        self.dst_t.close()
        if self.other is not None:
            self.other.feed_eof()  # its source is the socket just closed
        self.conn.link_done()

    # -- toxic path ----------------------------------------------------------------------
    def _chain(self, now: float) -> tuple[Chain, bool]:
        """Active toxics for this connection; flag if an active timeout toxic went away."""
        states: dict[str, ToxicState] = {}
        for toxic in self.conn.proxy.chains[self.stream]:
            state = self.states.get(toxic.name)
            if state is None:
                seed = self.conn.proxy.rng_seed(self.conn.ordinal, self.stream, toxic.name)
                state = ToxicState(toxic, seed, now)
            else:
                state.sync(toxic, now)
            states[toxic.name] = state
        # Toxiproxy closes connections whose timeout toxic is removed (data was lost).
        dropped = any(
            s.toxic.type == "timeout" and s.applies
            for name, s in self.states.items()
            if name not in states or not states[name].applies
        )
        self.states = states
        return [(s.toxic, s) for s in states.values() if s.applies], dropped

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._event.set)

    async def _pump(self) -> None:
        try:
            await self._run()
        except OSError as exc:  # peer vanished while writing
            log.debug("proxy %s %s: %s", self.conn.proxy.name, self.stream, exc)
            self.conn.close()
        finally:
            if self.pump is asyncio.current_task():
                self.pump = None

    async def _run(self) -> None:
        loop = self._loop
        while not self.done:
            self._event.clear()
            now = loop.time()
            chain, dropped = self._chain(now)
            if dropped:
                self.conn.close()
                return
            due = [(d, t) for t, s in chain if (d := deadline(t, s)) is not None]
            if due:
                when, toxic = min(due, key=lambda pair: pair[0])
                if when <= now:
                    self.conn.close(reset=False)
                    return
                self._arm(when)
            if self.queue:
                data, ts = self.queue.popleft()
                self.queued -= len(data)
                if self._src_paused and self.queued < QUEUE_BYTES // 2:
                    self._update_reading()
                if chain:
                    if await run_chain(chain, data, ts, self._write):
                        self.conn.close()
                        return
                else:
                    await self._write(data)
                continue
            if self.eof:
                if any(t.type == "timeout" for t, _ in chain):
                    self.conn.close()
                    return
                resets = [s for t, s in chain if t.type == "reset_peer"]
                if resets:
                    if resets[0].triggered is None:
                        resets[0].triggered = now
                        continue
                else:
                    delay = close_delay(chain)
                    if delay > 0:
                        await asyncio.sleep(delay)
                    self._finish()
                    return
            elif not chain:
                self.fast = True  # nothing applies and nothing queued: back to the fast path
                if self._timer is not None:
                    self._timer.cancel()
                return
            await self._event.wait()


_METRICS = (
    ("received_bytes_total", "counter", "Bytes read from the source side, per direction."),
    ("sent_bytes_total", "counter", "Bytes written to the destination side, per direction."),
    ("connections_total", "counter", "Client connections accepted."),
    ("connections_active", "gauge", "Client connections currently open."),
    ("enabled", "gauge", "1 while the proxy is listening."),
)


def render_metrics(proxies: list[Proxy]) -> str:
    """Prometheus text exposition; byte counters match Toxiproxy 2.6+ names and labels."""
    out: list[str] = []
    for short, kind, helptext in _METRICS:
        name = f"toxiproxy_proxy_{short}"
        out += [f"# HELP {name} {helptext}", f"# TYPE {name} {kind}"]
        for p in proxies:
            series = {
                "received_bytes_total": p.received,
                "sent_bytes_total": p.sent,
                "connections_total": {"": p.connections_total},
                "connections_active": {"": len(p.connections)},
                "enabled": {"": int(p.enabled)},
            }[short]
            for direction, value in series.items():
                labels = {"direction": direction} if direction else {}
                labels |= {"listener": p.listen, "proxy": p.name, "upstream": p.upstream}
                text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                out.append(f"{name}{{{text}}} {value}")
    return "\n".join(out) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
