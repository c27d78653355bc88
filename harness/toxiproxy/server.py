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
import base64
import contextlib
import itertools
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote, urlsplit

from .proxy import Proxy, render_metrics, resolve_listen
from .toxics import ApiError, Toxic, bad_body, parse_toxic, toxic_attributes, update_toxic

log = logging.getLogger("harness.toxiproxy")

#: What ``GET /version`` reports: the Toxiproxy release whose API this server matches.  A
#: plain release number, since clients compare versions (a ``-harness`` suffix would read
#: as a pre-release, below the release).
VERSION = "2.12.0"
MAX_BODY = 8 * 1024 * 1024
IDLE_TIMEOUT = 60.0


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

    def start_background(
        self,
        timeout: float = 10.0,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    ) -> ToxiproxyServer:
        """Run the server on its own event loop in a daemon thread; returns once bound.

        ``loop_factory`` picks the loop (``uvloop.new_event_loop`` for the image's loop)."""
        loop = loop_factory()
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
            await _bare(writer, "431 Request Header Fields Too Large")
            return False
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            await _bare(writer, "400 Bad Request")
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if version == "HTTP/1.1" and "host" not in headers:  # as Go's net/http
            await _bare(writer, "400 Bad Request: missing required Host header")
            return False
        conn = headers.get("connection", "").lower()
        keep = conn == "keep-alive" if version == "HTTP/1.0" else conn != "close"
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            body = await _read_body(reader, headers)
        except ValueError:
            await _bare(writer, "400 Bad Request")
            return False
        if body is None:
            await _bare(writer, "413 Request Entity Too Large")
            return False
        response = await self._dispatch(method, target, headers, body)
        log.debug("%s %s -> %s", method, target, response.status)
        await response.send(writer, keep, head_only=method == "HEAD")
        return keep

    async def _dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        path = urlsplit(target).path
        route = _match(path)
        if route is None:  # gorilla/mux's NotFound: no middleware, so no request id
            return Reply(404, b"404 page not found\n", TEXT, nosniff=True, request_id=False)
        name, args = route
        handler = ROUTES[name].get(method)
        if handler is None and name != "metrics":
            return Reply(405, b"", None, request_id=False)
        if headers.get("user-agent", "").startswith("Mozilla/"):
            return Reply(403, b"User agent not allowed\n", TEXT, nosniff=True)
        try:
            if name == "metrics":
                text = render_metrics(list(self.proxies.values()))
                return Reply(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
            assert handler is not None
            return await getattr(self, handler)(*args, body)
        except ApiError as exc:
            return error_reply(exc)
        except Exception as exc:  # never let a handler bug kill the API
            log.exception("API handler failed")
            return error_reply(ApiError(500, str(exc)))

    # -- handlers (one per Toxiproxy route) ------------------------------------------
    async def _version(self, body: bytes) -> Reply:
        payload = f'{{"version": "{VERSION}"}}\n'.encode()
        return Reply(200, payload, "application/json;charset=utf-8")

    async def _reset(self, body: bytes) -> Reply:
        for proxy in list(self.proxies.values()):
            await proxy.start()
            proxy.clear_toxics()
        return Reply(204)

    async def _proxy_index(self, body: bytes) -> Reply:
        return _json_reply(200, {name: p.to_json() for name, p in self.proxies.items()})

    async def _proxy_create(self, body: bytes) -> Reply:
        return _json_reply(201, (await self.create_proxy(_json(body))).to_json())

    async def _populate(self, body: bytes) -> Reply:
        created: list[Proxy] = []
        error: ApiError | None = None
        try:
            await self.populate(_json(body), created)
        except ApiError as exc:
            error = exc
        payload: dict[str, Any] = {}
        if error is not None:
            payload |= {"error": error.message, "status": error.status}
        payload["proxies"] = [p.to_json() for p in created] or None  # Go's nil slice
        return _json_reply(error.status if error else 201, payload)

    async def _proxy_show(self, name: str, body: bytes) -> Reply:
        return _json_reply(200, self._proxy(name).to_json())

    async def _proxy_update(self, name: str, body: bytes) -> Reply:
        proxy = self._proxy(name)
        return _json_reply(200, (await self.update_proxy(proxy, _json(body))).to_json())

    async def _proxy_delete(self, name: str, body: bytes) -> Reply:
        proxy = self._proxy(name)
        self.proxies.pop(name, None)
        await proxy.stop()
        return Reply(204)

    async def _toxic_index(self, name: str, body: bytes) -> Reply:
        return _json_reply(200, self._proxy(name).toxic_list())

    async def _toxic_create(self, name: str, body: bytes) -> Reply:
        proxy = self._proxy(name)
        raw = _json(body)
        toxic = parse_toxic(raw)
        if toxic.name in proxy.toxics:
            raise ApiError(409, "toxic already exists")
        proxy.set_toxic(toxic_attributes(toxic, raw))
        return _json_reply(200, toxic.to_json())

    async def _toxic_show(self, name: str, toxic_name: str, body: bytes) -> Reply:
        return _json_reply(200, self._toxic(name, toxic_name).to_json())

    async def _toxic_update(self, name: str, toxic_name: str, body: bytes) -> Reply:
        proxy = self._proxy(name)
        updated = update_toxic(self._toxic(name, toxic_name), _json(body))
        proxy.set_toxic(updated)
        return _json_reply(200, updated.to_json())

    async def _toxic_delete(self, name: str, toxic_name: str, body: bytes) -> Reply:
        self._toxic(name, toxic_name)
        self._proxy(name).remove_toxic(toxic_name)
        return Reply(204)

    def _proxy(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(404, "proxy not found")
        return proxy

    def _toxic(self, proxy_name: str, name: str) -> Toxic:
        toxic = self._proxy(proxy_name).toxics.get(name)
        if toxic is None:
            raise ApiError(404, "toxic not found")
        return toxic

    # -- collection operations ---------------------------------------------------------
    def _new_proxy(self, spec: object, where: str = "") -> tuple[Proxy, bool]:
        """Decode a proxy as Toxiproxy does: ``null`` means "not given", so defaults."""
        if not isinstance(spec, dict):
            raise bad_body(spec, "value", "toxiproxy.Proxy")
        fields = {}
        for key in ("name", "listen", "upstream"):
            value = spec.get(key)
            if value is not None and not isinstance(value, str):
                raise bad_body(value, f"struct field Proxy.{key}", "string")
            fields[key] = value or ""
        enabled = spec.get("enabled")
        if enabled is not None and not isinstance(enabled, bool):
            raise bad_body(enabled, "struct field Proxy.enabled", "bool")
        for key in ("name", "upstream"):
            if not fields[key]:
                raise ApiError(400, f"missing required field: {key}{where}")
        seed = f"{self._seed}:{fields['name']}"
        proxy = Proxy(fields["name"], fields["listen"], fields["upstream"], seed)
        return proxy, True if enabled is None else enabled

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

    async def populate(self, specs: object, created: list[Proxy] | None = None) -> list[Proxy]:
        """Toxiproxy's populate: every entry is checked first (name, upstream), then each is
        added in order; one whose listen (resolved) and upstream match an existing proxy
        keeps that proxy untouched (toxics, enabled state); another replaces it.  The first
        failure stops the run: the proxies done so far stay, and are in ``created``."""
        result = created if created is not None else []
        if not isinstance(specs, list):
            raise bad_body(specs, "value", _POPULATE_TYPE)
        parsed = [self._new_proxy(spec, f" at proxy {i}") for i, spec in enumerate(specs, 1)]
        for proxy, enabled in parsed:
            existing = self.proxies.get(proxy.name)
            if existing is not None:
                if not _differs(existing, proxy.listen, proxy.upstream):
                    result.append(existing)
                    continue
                await existing.stop()
                self.proxies.pop(proxy.name, None)
            if enabled:
                await proxy.start()
            self.proxies[proxy.name] = proxy
            result.append(proxy)
        return result

    async def update_proxy(self, proxy: Proxy, spec: object) -> Proxy:
        """Partial update; changing listen/upstream restarts the listener (drops conns)."""
        if not isinstance(spec, dict):
            raise bad_body(spec, "value", "toxiproxy.Proxy")
        listen = spec.get("listen")
        upstream = spec.get("upstream")
        enabled = spec.get("enabled")
        for key, value in (("listen", listen), ("upstream", upstream)):
            if value is not None and not isinstance(value, str):
                raise bad_body(value, f"struct field Proxy.{key}", "string")
        if enabled is not None and not isinstance(enabled, bool):
            raise bad_body(enabled, "struct field Proxy.enabled", "bool")
        listen = listen or proxy.listen
        upstream = upstream or proxy.upstream
        if _differs(proxy, listen, upstream):
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled is None:
            enabled = proxy.enabled
        if enabled:
            await proxy.start()
        elif proxy.enabled:
            await proxy.stop()
        return proxy


_POPULATE_TYPE = '[]struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }'


def _differs(proxy: Proxy, listen: str, upstream: str) -> bool:
    """Toxiproxy's Proxy.Differs: the new listen, resolved, against the current one."""
    return proxy.listen != resolve_listen(listen) or proxy.upstream != upstream


TEXT = "text/plain; charset=utf-8"

#: Toxiproxy's routes: name -> method -> handler (HEAD is not routed, as in gorilla/mux).
ROUTES: dict[str, dict[str, str]] = {
    "version": {"GET": "_version"},
    "metrics": {},
    "reset": {"POST": "_reset"},
    "proxies": {"GET": "_proxy_index", "POST": "_proxy_create"},
    "populate": {"POST": "_populate"},
    "proxy": {
        "GET": "_proxy_show",
        "POST": "_proxy_update",
        "PATCH": "_proxy_update",
        "DELETE": "_proxy_delete",
    },
    "toxics": {"GET": "_toxic_index", "POST": "_toxic_create"},
    "toxic": {
        "GET": "_toxic_show",
        "POST": "_toxic_update",
        "PATCH": "_toxic_update",
        "DELETE": "_toxic_delete",
    },
}


def _match(path: str) -> tuple[str, list[str]] | None:
    """Exact path matching like gorilla/mux without StrictSlash: no trailing slash."""
    parts = path.split("/")[1:]
    if not path.startswith("/") or any(p == "" for p in parts):
        return None
    parts = [unquote(p) for p in parts]
    match parts:
        case ["version" | "metrics" | "reset" | "proxies" | "populate" as name]:
            return name, []
        case ["proxies", proxy]:
            return "proxy", [proxy]
        case ["proxies", proxy, "toxics"]:
            return "toxics", [proxy]
        case ["proxies", proxy, "toxics", toxic]:
            return "toxic", [proxy, toxic]
    return None


class Reply:
    """An HTTP response as Toxiproxy's Go server writes it."""

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        ctype: str | None = None,
        *,
        nosniff: bool = False,
        request_id: bool = True,
    ) -> None:
        self.status, self.body, self.ctype = status, body, ctype
        self.nosniff, self.request_id = nosniff, request_id

    async def send(self, writer: asyncio.StreamWriter, keep: bool, head_only: bool = False) -> None:
        lines = [f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}"]
        if self.ctype is not None:
            lines.append(f"Content-Type: {self.ctype}")
        if self.nosniff:
            lines.append("X-Content-Type-Options: nosniff")
        if self.request_id:
            lines.append(f"X-Toxiproxy-Request-Id: {_request_id()}")
        lines.append(f"Date: {formatdate(usegmt=True)}")
        if self.status != 204:
            lines.append(f"Content-Length: {len(self.body)}")
        if not keep:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        writer.write(head + (b"" if head_only else self.body))
        await writer.drain()


def _json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode(), "application/json")


def error_reply(exc: ApiError) -> Reply:
    """Toxiproxy's apiError: the JSON object through Go's http.Error, so text/plain."""
    payload = json.dumps({"error": exc.message, "status": exc.status}, separators=(",", ":"))
    return Reply(exc.status, (payload + "\n").encode(), TEXT, nosniff=True)


_ids = itertools.count(random.SystemRandom().getrandbits(24))


def _request_id() -> str:
    """20 characters of base32hex like zerolog's xid: time, random, counter."""
    raw = (
        int(time.time()).to_bytes(4, "big")
        + _PROCESS_ID
        + (next(_ids) & 0xFFFFFF).to_bytes(3, "big")
    )
    return base64.b32hexencode(raw).decode().lower().rstrip("=")


_PROCESS_ID = os.urandom(5)


async def _bare(writer: asyncio.StreamWriter, text: str) -> None:
    """Go's own answer to a malformed request: the text on the status line and as body."""
    writer.write(
        f"HTTP/1.1 {text}\r\nContent-Type: {TEXT}\r\nConnection: close\r\n\r\n{text}".encode()
    )
    with contextlib.suppress(OSError):
        await writer.drain()


def _json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(400, "bad request body: EOF")
    try:
        return json.loads(body)
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
