"""Fixtures for the Toxiproxy-compatibility tests: the server under test and loopback upstreams.

``toxiproxy_url`` is the embedded server on an ephemeral port, on the standard loop and, where
uvloop is installed, on uvloop as in the image.  Set ``HARNESS_REAL_TOXIPROXY``
to a ``toxiproxy-server`` binary (built from source) and every test here also runs against
it, with the same assertions: that is how the expected behaviour was checked side by side.
Upstreams are threaded servers on loopback: ``blob`` sends the number of bytes asked for in a
``SIZE\\n`` request line, ``slow_echo`` echoes each chunk after 150 ms, ``greeter`` speaks
first (as MySQL does) and then echoes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from harness.toxiproxy import ToxiproxyServer

REAL = os.environ.get("HARNESS_REAL_TOXIPROXY", "")
try:
    import uvloop
except ImportError:  # the image has it (python3-uvloop); a dev venv may not
    uvloop = None
TARGETS = [
    "embedded",
    *(["embedded-uvloop"] if uvloop is not None else []),
    *(["toxiproxy"] if REAL else []),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(params=TARGETS)
def toxiproxy_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param.startswith("embedded"):
        factory = asyncio.new_event_loop
        if request.param == "embedded-uvloop" and uvloop is not None:
            factory = uvloop.new_event_loop
        srv = ToxiproxyServer(port=0, seed=7).start_background(loop_factory=factory)
        try:
            yield srv.base_url
        finally:
            srv.stop_background()
        return
    port = _free_port()
    proc = subprocess.Popen(
        [REAL, "-host", "127.0.0.1", "-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{url}/version", timeout=1)
                break
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


class _Threaded(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class _Blob(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            size = int(self.rfile.readline())
            block = b"x" * 65536
            while size > 0:
                self.wfile.write(block[: min(size, len(block))])
                size -= len(block)


class _Greeter(socketserver.BaseRequestHandler):
    """Speaks first, like MySQL's handshake, then echoes."""

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            self.request.sendall(b"hello\n")
            while data := self.request.recv(65536):
                self.request.sendall(data)


class _SlowEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                time.sleep(0.15)
                self.request.sendall(data)


def _serve(handler: type[socketserver.BaseRequestHandler]) -> Iterator[str]:
    srv = _Threaded(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def blob() -> Iterator[str]:
    yield from _serve(_Blob)


@pytest.fixture
def greeter() -> Iterator[str]:
    yield from _serve(_Greeter)


@pytest.fixture
def slow_echo() -> Iterator[str]:
    yield from _serve(_SlowEcho)
