"""Toxic behaviour measured through the proxy on loopback (harness.toxiproxy).

Each test starts a threaded echo upstream and a ToxiproxyServer on ephemeral ports and
talks to the proxy with plain blocking sockets (5 s timeouts, so nothing hangs).  Timing
bounds are generous on the upper side because CI machines are busy.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from harness.toxiproxy import ToxiproxyServer
from harness.toxiproxy.client import ToxiproxyClient

FAST = 0.25  # "no toxic" round trips; every delaying toxic in these tests is >= 300 ms


@pytest.fixture
def api(server: ToxiproxyServer) -> Iterator[ToxiproxyClient]:
    with ToxiproxyClient(server.base_url) as client:
        yield client


@pytest.fixture
def port(api: ToxiproxyClient, echo: str) -> int:
    """Port of a proxy named ``echo`` in front of the echo upstream."""
    proxy = api.create_proxy("echo", "127.0.0.1:0", echo)
    return int(proxy["listen"].rsplit(":", 1)[1])


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    buf = b""
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - start


def test_plain_forwarding_is_fast(port: int) -> None:
    with connect(port) as sock:
        assert round_trip(sock) < FAST
        assert round_trip(sock, b"x" * 100_000) < 1.0


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_delays_round_trip(api: ToxiproxyClient, port: int, stream: str) -> None:
    api.add_toxic("echo", "latency", {"latency": 300}, stream=stream)
    with connect(port) as sock:
        elapsed = round_trip(sock)
    assert 0.29 <= elapsed < 0.6


def test_latency_is_per_chunk_not_cumulative(api: ToxiproxyClient, port: int) -> None:
    api.add_toxic("echo", "latency", {"latency": 200})
    with connect(port) as sock:
        start = time.monotonic()
        for _ in range(5):  # five chunks in quick succession, each delayed ~200 ms
            sock.sendall(b"abc")
            time.sleep(0.02)
        assert recv_exactly(sock, 15) == b"abc" * 5
        assert 0.2 <= time.monotonic() - start < 0.7  # not 5 x 200 ms


def test_toxic_added_updated_removed_on_open_connection(api: ToxiproxyClient, port: int) -> None:
    with connect(port) as sock:
        assert round_trip(sock) < FAST
        api.add_toxic("echo", "latency", {"latency": 400}, name="lag")
        assert 0.39 <= round_trip(sock) < 0.8
        api.update_toxic("echo", "lag", attributes={"latency": 50})
        assert 0.045 <= round_trip(sock) < 0.35
        api.remove_toxic("echo", "lag")
        assert round_trip(sock) < FAST


def test_bandwidth_throttles(api: ToxiproxyClient, port: int) -> None:
    api.add_toxic("echo", "bandwidth", {"rate": 100})  # 100 KB/s downstream
    payload = bytes(range(256)) * 240  # 61 440 bytes -> ~0.61 s
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        elapsed = time.monotonic() - start
    assert 0.5 <= elapsed < 3.0


def test_slicer_splits_and_delays(api: ToxiproxyClient, port: int) -> None:
    api.add_toxic("echo", "slicer", {"average_size": 100, "size_variation": 0, "delay": 20_000})
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(b"s" * 1000)  # 10 slices, 9 gaps of 20 ms
        assert recv_exactly(sock, 1000) == b"s" * 1000
        assert 0.17 <= time.monotonic() - start < 1.5


def test_limit_data_closes_after_n_bytes(api: ToxiproxyClient, port: int) -> None:
    api.add_toxic("echo", "limit_data", {"bytes": 10})
    with connect(port) as sock:
        assert round_trip(sock, b"aaaa") < 0.5
        sock.sendall(b"bbbbbbbbbb")
        assert recv_exactly(sock, 100) == b"bbbbbb"  # 4 + 6 = 10 bytes, then EOF


def test_timeout_drops_data_and_closes_after_timeout(api: ToxiproxyClient, port: int) -> None:
    api.add_toxic("echo", "timeout", {"timeout": 300})
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(b"lost")
        assert sock.recv(10) == b""  # nothing forwarded, then closed
        assert 0.29 <= time.monotonic() - start < 1.5


def test_timeout_zero_holds_until_toxic_removed(api: ToxiproxyClient, port: int) -> None:
    api.add_toxic("echo", "timeout", {"timeout": 0})
    with connect(port) as sock:
        sock.settimeout(0.5)
        sock.sendall(b"held")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.settimeout(5)
        api.remove_toxic("echo", "timeout_downstream")
        assert sock.recv(10) == b""  # like Toxiproxy: removal closes the dropped stream
    with connect(port) as sock:  # new connections are healthy again
        assert round_trip(sock) < FAST


def test_reset_peer_sends_rst(api: ToxiproxyClient, port: int) -> None:
    api.add_toxic("echo", "reset_peer", {"timeout": 100})
    with connect(port) as sock:
        start = time.monotonic()
        sock.sendall(b"boom")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
        assert 0.09 <= time.monotonic() - start < 1.5


def test_slow_close_delays_end_of_stream(api: ToxiproxyClient, port: int) -> None:
    api.add_toxic("echo", "slow_close", {"delay": 300})
    with connect(port) as sock:
        assert round_trip(sock) < FAST  # data itself is not delayed
        start = time.monotonic()
        sock.shutdown(socket.SHUT_WR)  # echo server closes -> downstream EOF is delayed
        assert sock.recv(10) == b""
        assert 0.29 <= time.monotonic() - start < 1.5


def test_disable_closes_live_connections_and_refuses_new(api: ToxiproxyClient, port: int) -> None:
    with connect(port) as sock:
        assert round_trip(sock) < FAST
        api.disable("echo")
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(10) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    assert api.enable("echo")["listen"] == f"127.0.0.1:{port}"  # same address again
    with connect(port) as sock:
        assert round_trip(sock) < FAST


def test_toxicity_zero_never_applies(api: ToxiproxyClient, port: int) -> None:
    api.add_toxic("echo", "latency", {"latency": 300}, toxicity=0.0)
    for _ in range(3):
        with connect(port) as sock:
            assert round_trip(sock) < FAST


def test_unreachable_upstream_closes_client(api: ToxiproxyClient) -> None:
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    proxy = api.create_proxy("dead", "127.0.0.1:0", f"127.0.0.1:{dead}")
    start = time.monotonic()
    with (
        connect(int(proxy["listen"].rsplit(":", 1)[1])) as sock,
        contextlib.suppress(ConnectionResetError),
    ):
        assert sock.recv(10) == b""
    assert time.monotonic() - start < 3


def _toxicity_pattern(seed: int, echo: str, connections: int = 16) -> list[bool]:
    """Which of N sequential connections got a 50 % toxic (limit_data 0 = instant close)."""
    with (
        ToxiproxyServer(port=0, seed=seed) as srv,
        ToxiproxyClient(srv.base_url) as api,
    ):
        proxy = api.create_proxy("seeded", "127.0.0.1:0", echo)
        port = int(proxy["listen"].rsplit(":", 1)[1])
        api.add_toxic("seeded", "limit_data", {"bytes": 0}, toxicity=0.5)
        hits = []
        for _ in range(connections):
            with connect(port) as sock:
                sock.sendall(b"x")
                hits.append(recv_exactly(sock, 1) == b"")
        return hits


def test_seeded_toxicity_is_reproducible(echo: str) -> None:
    first = _toxicity_pattern(1234, echo)
    assert first == _toxicity_pattern(1234, echo)
    assert any(first) and not all(first)  # the toxicity really is a per-connection draw
    assert _toxicity_pattern(99, echo) != first
