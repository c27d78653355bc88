"""Fixtures shared by the unit tests: for the Toxiproxy-compatible proxy, a TCP echo upstream
and a proxy server on loopback, both on ephemeral ports and always stopped; `promlab`, a real
Prometheus on loopback over synthetic series (tests/promlab.py), one per test, always stopped.
Without promtool/prometheus (./install.sh --dev installs them) `promlab` tests are skipped,
except in CI (CI set), where that is a failure."""

from __future__ import annotations

import contextlib
import os
import socketserver
import threading
from collections.abc import Iterator

import pytest

from harness.toxiproxy import ToxiproxyServer
from tests.promlab import PromLab, missing_binaries


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


@pytest.fixture
def promlab() -> Iterator[PromLab]:
    """A fresh PromLab: add series, call `start()`, query `promlab.prom`; stopped at teardown
    whatever happened (starting one costs ~0.15 s, so each test gets its own)."""
    missing = missing_binaries()
    if missing:
        why = (
            f"{' and '.join(missing)} not on PATH (./install.sh --dev installs Debian's prometheus)"
        )
        if os.environ.get("CI"):
            pytest.fail(f"promlab: {why}; never skipped in CI", pytrace=False)
        pytest.skip(f"promlab: {why}")
    lab = PromLab()
    try:
        yield lab
    finally:
        lab.stop()
