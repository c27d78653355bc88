"""Toxiproxy-compatible HTTP API on a minimal asyncio HTTP/1.1 server.

The HTTP layer is hand-rolled (request line, headers, Content-Length or chunked body,
keep-alive) because the container image only has Debian's ``python3``: no third-party
web framework may be imported here.  Everything (API and proxies) runs on one event
loop, so handlers mutate state without locks.  ``ToxiproxyServer`` can run in the
foreground (``python -m harness.toxiproxy``) or on a background thread (tests, local
runs); see ``start_background``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

from .proxy import Proxy, render_metrics, split_hostport
from .toxics import ApiError, parse_toxic, update_toxic

log = logging.getLogger("harness.toxiproxy")

VERSION = "2.6.0-harness"
MAX_BODY = 8 * 1024 * 1024
IDLE_TIMEOUT = 60.0

Response = tuple[int, Any]  # (status, JSON-able body | str for text | None for no body)


class ToxiproxyServer:
    """The API server plus the proxy collection it manages."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8474, seed: int | None = None) -> None:
        self.host, self.port = host, port
        self.seed = seed
        # Without a seed, pick one: same code path, decisions just aren't reproducible.
        self._seed = seed if seed is not None else random.SystemRandom().getrandbits(64)
        self.proxies: dict[str, Proxy] = {}
        self._server: asyncio.Server | None = None
        self._api_tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve_client, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("toxiproxy API listening on %s:%s (version %s)", self.host, self.port, VERSION)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        api_tasks = list(self._api_tasks)
        for task in api_tasks:
            task.cancel()
        for proxy in list(self.proxies.values()):
            await proxy.stop()
        self.proxies.clear()
        if api_tasks:
            await asyncio.wait(api_tasks, timeout=2.0)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    def start_background(self, timeout: float = 10.0) -> ToxiproxyServer:
        """Run the server on its own event loop in a daemon thread; returns once bound."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # surface bind errors to the caller
                failure.append(exc)
            ready.set()
            if not failure:
                loop.run_forever()
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="toxiproxy", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("toxiproxy server did not start")
        if failure:
            self._thread.join(timeout)
            self._loop = self._thread = None
            raise failure[0]
        return self

    def stop_background(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            self._loop = self._thread = None

    def __enter__(self) -> ToxiproxyServer:
        return self.start_background()

    def __exit__(self, *exc: object) -> None:
        self.stop_background()

    # -- HTTP ------------------------------------------------------------------------
    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._api_tasks.add(task)
        try:
            while await self._serve_one(reader, writer):
                pass
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass  # shutdown; asyncio 3.11 streams would log a cancelled handler task
        finally:
            self._api_tasks.discard(task)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Handle one request; return whether the connection stays open."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
        except asyncio.LimitOverrunError:
            await _respond(writer, 431, {"error": "headers too large", "status": 431}, False)
            return False
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            await _respond(writer, 400, {"error": "bad request line", "status": 400}, False)
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        conn = headers.get("connection", "").lower()
        keep = conn == "keep-alive" if version == "HTTP/1.0" else conn != "close"
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body = await _read_body(reader, headers)
        except ValueError:
            await _respond(writer, 400, {"error": "bad framing", "status": 400}, False)
            return False
        if body is None:
            await _respond(writer, 413, {"error": "request body too large", "status": 413}, False)
            return False
        if headers.get("user-agent", "").startswith("Mozilla/"):
            status, payload = 403, {"error": "User agent not allowed", "status": 403}
        else:
            status, payload = await self._dispatch(method, target, body)
        log.debug("%s %s -> %s", method, target, status)
        await _respond(writer, status, payload, keep, head_only=method == "HEAD")
        return keep

    async def _dispatch(self, method: str, target: str, body: bytes) -> Response:
        parts = [unquote(p) for p in urlsplit(target).path.split("/") if p]
        try:
            return await self._route(method, parts, body)
        except ApiError as exc:
            return exc.status, {"error": exc.message, "status": exc.status}
        except Exception as exc:  # never let a handler bug kill the API
            log.exception("API handler failed")
            return 500, {"error": str(exc), "status": 500}

    async def _route(self, method: str, parts: list[str], body: bytes) -> Response:
        m = "GET" if method == "HEAD" else method
        match parts, m:
            case ["version"], "GET":
                return 200, {"version": VERSION}
            case ["metrics"], "GET":
                return 200, render_metrics(list(self.proxies.values()))
            case ["reset"], "POST":
                for proxy in list(self.proxies.values()):
                    await proxy.start()
                    proxy.toxics.clear()
                    proxy.notify()
                return 204, None
            case ["proxies"], "GET":
                return 200, {name: p.to_json() for name, p in self.proxies.items()}
            case ["proxies"], "POST":
                proxy = await self.create_proxy(_json(body))
                return 201, proxy.to_json()
            case ["populate"], "POST":
                return 201, {"proxies": [p.to_json() for p in await self.populate(_json(body))]}
            case ["proxies", name], "GET":
                return 200, self._proxy(name).to_json()
            case ["proxies", name], "POST" | "PATCH":
                return 200, (await self.update_proxy(self._proxy(name), _json(body))).to_json()
            case ["proxies", name], "DELETE":
                await self._proxy(name).stop()
                self.proxies.pop(name, None)
                return 204, None
            case ["proxies", name, "toxics"], "GET":
                return 200, self._proxy(name).toxic_list()
            case ["proxies", name, "toxics"], "POST":
                proxy = self._proxy(name)
                toxic = parse_toxic(_json(body))
                if toxic.name in proxy.toxics:
                    raise ApiError(409, "toxic already exists")
                proxy.set_toxic(toxic)
                return 200, toxic.to_json()
            case ["proxies", name, "toxics", toxic_name], _:
                return self._toxic_item(self._proxy(name), toxic_name, m, body)
            case (
                (
                    ["version" | "metrics" | "reset" | "proxies" | "populate"]
                    | ["proxies", _]
                    | ["proxies", _, "toxics"]
                ),
                _,
            ):
                raise ApiError(405, "method not allowed")
        raise ApiError(404, "not found")

    def _toxic_item(self, proxy: Proxy, name: str, method: str, body: bytes) -> Response:
        toxic = proxy.toxics.get(name)
        if toxic is None:
            raise ApiError(404, "toxic not found")
        if method == "GET":
            return 200, toxic.to_json()
        if method in ("POST", "PATCH"):
            updated = update_toxic(toxic, _json(body))
            proxy.set_toxic(updated)
            return 200, updated.to_json()
        if method == "DELETE":
            proxy.remove_toxic(name)
            return 204, None
        raise ApiError(405, "method not allowed")

    def _proxy(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, "proxy not found")
        return proxy

    # -- collection operations ---------------------------------------------------------
    def _new_proxy(self, spec: object) -> tuple[Proxy, bool]:
        if not isinstance(spec, dict):
            raise ApiError(400, "bad request body: expected a JSON object")
        for field in ("name", "upstream"):
            if not isinstance(spec.get(field), str) or not spec[field]:
                raise ApiError(400, f"missing required field: {field}")
        enabled = spec.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ApiError(400, "bad request body: enabled must be a boolean")
        listen = spec.get("listen") or f"{self.host}:0"
        seed = f"{self._seed}:{spec['name']}"
        return Proxy(spec["name"], listen, spec["upstream"], seed), enabled

    async def create_proxy(self, spec: object) -> Proxy:
        proxy, enabled = self._new_proxy(spec)
        if proxy.name in self.proxies:
            raise ApiError(409, "proxy already exists")
        if enabled:
            await proxy.start()
            if proxy.name in self.proxies:  # a concurrent request won while we were binding
                await proxy.stop()
                raise ApiError(409, "proxy already exists")
        self.proxies[proxy.name] = proxy
        return proxy

    async def populate(self, specs: object) -> list[Proxy]:
        """Create or replace; a proxy with the same listen+upstream is kept (and its toxics)."""
        if isinstance(specs, dict) and "proxies" in specs:
            specs = specs["proxies"]
        if not isinstance(specs, list):
            raise ApiError(400, "bad request body: expected a list of proxies")
        parsed = [self._new_proxy(spec) for spec in specs]  # validate all before touching any
        result = []
        for proxy, enabled in parsed:
            existing = self.proxies.get(proxy.name)
            if existing and (existing.listen, existing.upstream) == (proxy.listen, proxy.upstream):
                result.append(await self.update_proxy(existing, {"enabled": enabled}))
                continue
            if existing is not None:
                await existing.stop()
                self.proxies.pop(proxy.name, None)
            result.append(await self.create_proxy({**proxy.to_json(), "enabled": enabled}))
        return result

    async def update_proxy(self, proxy: Proxy, spec: object) -> Proxy:
        """Partial update; changing listen/upstream restarts the listener (drops conns)."""
        if not isinstance(spec, dict):
            raise ApiError(400, "bad request body: expected a JSON object")
        enabled = spec.get("enabled", proxy.enabled)
        if not isinstance(enabled, bool):
            raise ApiError(400, "bad request body: enabled must be a boolean")
        listen = spec.get("listen") or proxy.listen
        upstream = spec.get("upstream") or proxy.upstream
        split_hostport(listen, "listen")
        split_hostport(upstream, "upstream")
        if (listen, upstream) != (proxy.listen, proxy.upstream):
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled:
            await proxy.start()
        elif proxy.enabled:
            await proxy.stop()
        return proxy


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as exc:
        raise ApiError(400, f"bad request body: {exc}") from exc


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes | None:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                return None
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_BODY:
        return None
    return await reader.readexactly(length) if length else b""


async def _respond(
    writer: asyncio.StreamWriter, status: int, payload: Any, keep: bool, head_only: bool = False
) -> None:
    if payload is None:
        body, ctype = b"", None
    elif isinstance(payload, str):
        body, ctype = payload.encode(), "text/plain; version=0.0.4; charset=utf-8"
    else:
        body, ctype = (json.dumps(payload) + "\n").encode(), "application/json"
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    if ctype is not None:
        lines.append(f"Content-Type: {ctype}")
    if status != 204:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: keep-alive" if keep else "Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head_only else body))
    await writer.drain()
