"""Proxy listeners and per-connection pumps.

Each accepted client gets a ``Connection`` with two ``Link``s (upstream = client to
server, downstream = server to client).  A link is a reader task that timestamps chunks
into a small bounded queue, plus a pump that, *per chunk*, asks the proxy for the
current toxic list and pushes the chunk through it.  Re-reading the list per chunk (and
waking idle pumps on every change) is what makes toxics apply to already-open
connections; timestamping at read time makes latency non-cumulative like Toxiproxy.
Byte counters are bumped per chunk so metrics move while connections stay open.
Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
from typing import Any

from .toxics import ApiError, Chain, Toxic, ToxicState, close_delay, deadline, run_chain

log = logging.getLogger("harness.toxiproxy")

READ_SIZE = 32 * 1024
QUEUE_CHUNKS = 8  # bounded: a slow toxic applies back-pressure to the sender
CONNECT_TIMEOUT = 10.0


def split_hostport(value: object, what: str) -> tuple[str, int]:
    """Parse ``host:port`` / ``[v6]:port``; an empty host means all interfaces."""
    if not isinstance(value, str) or ":" not in value:
        raise ApiError(400, f"bad request body: {what} must be 'host:port'")
    host, _, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ApiError(400, f"bad request body: invalid port in {what} {value!r}")
    return host, int(port_text)


def join_hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Signal:
    """Queue sentinels (distinct from ``(data, timestamp)`` chunks)."""


WAKE, EOF = _Signal(), _Signal()
Item = tuple[bytes, float] | _Signal


class Proxy:
    """One named listener forwarding to one upstream, with its toxics and counters."""

    def __init__(self, name: str, listen: str, upstream: str, seed: str) -> None:
        split_hostport(listen, "listen")
        split_hostport(upstream, "upstream")
        self.name, self.listen, self.upstream = name, listen, upstream
        self.enabled = False
        self.toxics: dict[str, Toxic] = {}
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
        return [t.to_json() for s in ("upstream", "downstream") for t in self.chain_for(s)]

    def chain_for(self, stream: str) -> list[Toxic]:
        return [t for t in self.toxics.values() if t.stream == stream]

    def rng_for(self, ordinal: int, stream: str, toxic: str) -> random.Random:
        """Independent stream per (connection, direction, toxic): order-insensitive replay."""
        return random.Random(f"{self._seed}:{ordinal}:{stream}:{toxic}")

    def set_toxic(self, toxic: Toxic) -> None:
        self.toxics[toxic.name] = toxic
        self.notify()

    def remove_toxic(self, name: str) -> None:
        del self.toxics[name]
        self.notify()

    def notify(self) -> None:
        """Wake idle pumps so toxic changes (and their timers) apply immediately."""
        for conn in list(self.connections):
            for link in conn.links:
                link.wake()

    async def start(self) -> None:
        if self._server is not None:
            self.enabled = True
            return
        host, port = split_hostport(self.listen, "listen")
        loop = asyncio.get_running_loop()
        # Bind one address only (like Go's net.Listen), so ":0" yields a single port.
        infos = await loop.getaddrinfo(
            host or "0.0.0.0", port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        addr = str(infos[0][4][0])
        try:
            self._server = await asyncio.start_server(self._accept, addr, port, reuse_address=True)
        except OSError as exc:
            raise ApiError(500, f"listen tcp {self.listen}: {exc.strerror or exc}") from exc
        actual = self._server.sockets[0].getsockname()[1]
        self.listen = join_hostport(host, actual)
        self.enabled = True
        log.info("proxy %s listening on %s -> %s", self.name, self.listen, self.upstream)

    async def stop(self) -> None:
        """Stop listening (new connects are refused) and close live connections."""
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        conns = list(self.connections)
        for conn in conns:
            conn.close()
        tasks = [c.task for c in conns if c.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2.0)
            log.info("proxy %s stopped", self.name)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.enabled:
            writer.close()
            return
        conn = Connection(self, self._ordinal, reader, writer)
        self._ordinal += 1
        self.connections_total += 1
        self.connections.add(conn)
        try:
            await conn.run()
        except asyncio.CancelledError:
            conn.close()  # top-level handler: asyncio 3.11 streams log a cancelled task
        finally:
            self.connections.discard(conn)


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Connection:
    """A client connection and its upstream connection, torn down together."""

    def __init__(
        self,
        proxy: Proxy,
        ordinal: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proxy, self.ordinal = proxy, ordinal
        self.client_reader, self.client_writer = reader, writer
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.links: list[Link] = []
        self.closed = False
        self.task: asyncio.Task[Any] | None = None
        self._connecting: asyncio.Future[Any] | None = None
        self._link_tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        self.task = asyncio.current_task()
        host, port = split_hostport(self.proxy.upstream, "upstream")
        self._connecting = asyncio.ensure_future(
            asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT)
        )
        try:
            up_reader, up_writer = await self._connecting
        except (OSError, TimeoutError) as exc:
            log.warning("proxy %s: upstream %s unreachable: %s", self.proxy.name, host, exc)
            self.close()
            return
        except asyncio.CancelledError:
            if self.closed:  # close() gave up on the pending connect
                return
            raise
        self.upstream_writer = up_writer
        if self.closed:
            up_writer.close()
            return
        self.links = [
            Link(self, "upstream", self.client_reader, up_writer),
            Link(self, "downstream", up_reader, self.client_writer),
        ]
        self._link_tasks = [asyncio.create_task(link.run()) for link in self.links]
        try:
            await asyncio.wait(self._link_tasks)
        finally:
            self.close()

    def close(self, reset: bool = False) -> None:
        """Close both sides (FIN, or RST when ``reset``) and stop both pumps."""
        if self.closed:
            return
        self.closed = True
        for writer in (self.client_writer, self.upstream_writer):
            if writer is not None:
                _abort_with_rst(writer) if reset else writer.close()
        if self._connecting is not None:
            self._connecting.cancel()  # no-op once connected
        current = asyncio.current_task()
        for task in self._link_tasks:
            if task is not current:
                task.cancel()


class Link:
    """One direction of a connection: reader task + toxic-applying pump."""

    def __init__(
        self,
        conn: Connection,
        stream: str,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
    ) -> None:
        self.conn, self.stream, self.src, self.dst = conn, stream, src, dst
        self.queue: asyncio.Queue[Item] = asyncio.Queue(QUEUE_CHUNKS)
        self.states: dict[str, tuple[Toxic, ToxicState]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def wake(self) -> None:
        # A full queue means the pump is busy and will re-read the toxics anyway.
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(WAKE)

    async def run(self) -> None:
        reader = asyncio.create_task(self._read())
        try:
            await self._pump()
        except OSError as exc:  # peer vanished while writing
            log.debug("proxy %s %s: %s", self.conn.proxy.name, self.stream, exc)
            self.conn.close()
        finally:
            reader.cancel()
            if self._timer is not None:
                self._timer.cancel()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):  # a reset peer ends the stream like EOF
            while data := await self.src.read(READ_SIZE):
                self.conn.proxy.received[self.stream] += len(data)
                await self.queue.put((data, loop.time()))
        await self.queue.put(EOF)

    async def _write(self, data: bytes) -> None:
        self.dst.write(data)
        self.conn.proxy.sent[self.stream] += len(data)
        await self.dst.drain()

    def _chain(self, now: float) -> tuple[Chain, bool]:
        """Current active toxics for this connection; flag if a timeout toxic went away."""
        states: dict[str, tuple[Toxic, ToxicState]] = {}
        for toxic in self.conn.proxy.chain_for(self.stream):
            seen = self.states.get(toxic.name)
            if seen is None:
                rng = self.conn.proxy.rng_for(self.conn.ordinal, self.stream, toxic.name)
                state = ToxicState(toxic, rng, now)
            else:
                state = seen[1]
                state.sync(toxic)
            states[toxic.name] = (toxic, state)
        # Toxiproxy closes connections whose timeout toxic is removed (data was lost).
        dropped = any(
            t.type == "timeout" and s.applies
            for name, (t, s) in self.states.items()
            if name not in states or not states[name][1].applies
        )
        self.states = states
        return [(t, s) for t, s in states.values() if s.applies], dropped

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, self.wake)

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        eof = False
        while True:
            now = loop.time()
            chain, dropped = self._chain(now)
            if dropped:
                self.conn.close()
                return
            due = [(d, t) for t, s in chain if (d := deadline(t, s)) is not None]
            if due:
                when, toxic = min(due, key=lambda pair: pair[0])
                if when <= now:
                    self.conn.close(reset=toxic.type == "reset_peer")
                    return
                self._arm(when)
            if eof:
                if any(t.type == "timeout" for t, _ in chain):
                    self.conn.close()
                    return
                resets = [s for t, s in chain if t.type == "reset_peer"]
                if not resets:
                    await asyncio.sleep(close_delay(chain))
                    if self.dst.can_write_eof() and not self.dst.is_closing():
                        self.dst.write_eof()  # half-close; Connection closes when both end
                    return
                if resets[0].triggered is None:
                    resets[0].triggered = now
                    continue
            item = await self.queue.get()
            if item is EOF:
                eof = True
            elif isinstance(item, tuple) and await run_chain(chain, item[0], item[1], self._write):
                self.conn.close()
                return


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
