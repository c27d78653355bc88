"""Fixtures shared by the unit tests of the Toxiproxy-compatible proxy: a TCP echo upstream
and a proxy server on loopback, both on ephemeral ports and always stopped."""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator

import pytest

from harness.toxiproxy import ToxiproxyServer


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.request.recv(65536):
                self.request.sendall(data)


class _ThreadedServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


@pytest.fixture
def echo() -> Iterator[str]:
    srv = _ThreadedServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
def server() -> Iterator[ToxiproxyServer]:
    srv = ToxiproxyServer(port=0).start_background()
    yield srv
    srv.stop_background()
