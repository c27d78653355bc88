"""Clients against harness.toxiproxy: our httpx client and the upstream toxiproxy-python.

toxiproxy-python (0.1.1) keeps host/port as process-wide class attributes and calls
``requests`` without timeouts, so its fixture points those attributes at the test server,
injects a timeout, and restores everything afterwards.
"""

from __future__ import annotations

import functools
import socket
import time
import types
from collections.abc import Iterator

import httpx
import pytest
import requests
import toxiproxy
import toxiproxy.api
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from harness.toxiproxy import VERSION, ToxiproxyServer
from harness.toxiproxy.client import (
    BadRequest,
    Conflict,
    ToxiproxyClient,
    ToxiproxyError,
    parse_metrics,
)
from harness.toxiproxy.client import NotFound as ClientNotFound

FAST = 0.25  # "no toxic" round trips; the latency toxics used here are 300 ms


@pytest.fixture
def client(server: ToxiproxyServer) -> Iterator[ToxiproxyClient]:
    with ToxiproxyClient(server.base_url, timeout=5) as c:
        yield c


@pytest.fixture
def upstream_lib(server: ToxiproxyServer, monkeypatch: pytest.MonkeyPatch) -> toxiproxy.Toxiproxy:
    monkeypatch.setattr(toxiproxy.api.APIConsumer, "host", "127.0.0.1")
    monkeypatch.setattr(toxiproxy.api.APIConsumer, "port", server.port)
    timed = types.SimpleNamespace(
        **{m: functools.partial(getattr(requests, m), timeout=5) for m in ("get", "post", "delete")}
    )
    monkeypatch.setattr(toxiproxy.api, "requests", timed)
    return toxiproxy.Toxiproxy()


def _port(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def _rtt(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        start = time.monotonic()
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"
        return time.monotonic() - start


# -- our client -------------------------------------------------------------------------
def test_client_proxy_lifecycle(client: ToxiproxyClient, echo: str) -> None:
    assert client.version() == VERSION and "-" not in VERSION  # a release, not a pre-release
    created = client.create_proxy("web", "127.0.0.1:0", echo)
    assert created["enabled"] and _port(created["listen"]) > 0
    assert client.get_proxy("web") == created
    assert client.proxies() == {"web": created}
    assert client.disable("web")["enabled"] is False
    assert client.update_proxy("web", enabled=True)["listen"] == created["listen"]
    assert _rtt(_port(created["listen"])) < FAST
    client.delete_proxy("web")
    assert client.proxies() == {}


def test_client_toxic_lifecycle(client: ToxiproxyClient, echo: str) -> None:
    port = _port(client.create_proxy("web", "127.0.0.1:0", echo)["listen"])
    toxic = client.add_toxic("web", "latency", {"latency": 300}, stream="upstream", name="slow")
    assert toxic["name"] == "slow" and toxic["stream"] == "upstream"
    assert client.get_toxic("web", "slow") == toxic
    assert 0.29 <= _rtt(port) < 0.6
    updated = client.update_toxic("web", "slow", toxicity=0.0)
    assert updated["toxicity"] == 0.0 and updated["attributes"]["latency"] == 300
    assert _rtt(port) < FAST
    client.remove_toxic("web", "slow")
    assert client.toxics("web") == []
    defaulted = client.add_toxic("web", "bandwidth", {"rate": 1})
    assert defaulted["name"] == "bandwidth_downstream" and defaulted["toxicity"] == 1.0


def test_client_populate_and_reset(client: ToxiproxyClient, echo: str) -> None:
    made = client.populate(
        [
            {"name": "a", "listen": "127.0.0.1:0", "upstream": echo},
            {"name": "b", "listen": "127.0.0.1:0", "upstream": echo, "enabled": False},
        ]
    )
    assert [p["name"] for p in made] == ["a", "b"]
    assert [p["enabled"] for p in made] == [True, False]
    client.add_toxic("a", "timeout", {"timeout": 0})
    client.reset()
    assert all(p["enabled"] and p["toxics"] == [] for p in client.proxies().values())


def test_client_errors_are_typed(client: ToxiproxyClient, echo: str) -> None:
    client.create_proxy("p", "127.0.0.1:0", echo)
    with pytest.raises(Conflict) as conflict:
        client.create_proxy("p", "127.0.0.1:0", echo)
    assert conflict.value.status == 409 and "already exists" in conflict.value.message
    with pytest.raises(ClientNotFound):
        client.get_proxy("missing")
    with pytest.raises(ClientNotFound):
        client.remove_toxic("p", "missing")
    with pytest.raises(BadRequest, match="invalid toxic type"):
        client.add_toxic("p", "teleport", {})
    with pytest.raises(ToxiproxyError):
        client.add_toxic("p", "latency", {"latency": "fast"})


def test_client_metrics(client: ToxiproxyClient, echo: str) -> None:
    port = _port(client.create_proxy("m", "127.0.0.1:0", echo)["listen"])
    assert client.metric_value("toxiproxy_proxy_connections_total", proxy="m") == 0
    _rtt(port)
    assert client.metric_value("toxiproxy_proxy_connections_total", proxy="m") == 1
    assert client.metric_value("toxiproxy_proxy_sent_bytes_total", proxy="m") == 8  # 4 each way
    sent = client.metric_value("toxiproxy_proxy_sent_bytes_total", direction="downstream")
    assert sent == 4
    assert any(s.name == "toxiproxy_proxy_enabled" for s in client.metrics())


def test_parse_metrics_handles_escapes() -> None:
    text = '# HELP x y\nx_total{a="q\\"uote",b="back\\\\slash"} 3.5\nplain 1\n'
    samples = parse_metrics(text)
    assert samples[0].labels == {"a": 'q"uote', "b": "back\\slash"} and samples[0].value == 3.5
    assert samples[1].name == "plain" and samples[1].labels == {}


def test_client_times_out_on_silent_server() -> None:
    with socket.socket() as silent:  # accepts (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with ToxiproxyClient(f"http://127.0.0.1:{port}", timeout=0.3) as slow:
            start = time.monotonic()
            with pytest.raises(httpx.TimeoutException):
                slow.version()
            assert time.monotonic() - start < 3


def test_client_reads_plain_text_version() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="2.1.4\n"))
    with ToxiproxyClient("http://toxiproxy:8474", transport=transport) as legacy:
        assert legacy.version() == "2.1.4"


# -- toxiproxy-python (the upstream library) --------------------------------------------
def test_upstream_library_basic_flow(upstream_lib: toxiproxy.Toxiproxy, echo: str) -> None:
    assert upstream_lib.running()
    assert upstream_lib.version() == f'{{"version": "{VERSION}"}}\n'.encode()
    proxy = upstream_lib.create(upstream=echo, name="lib")
    assert proxy.enabled and _port(proxy.listen) > 0
    assert set(upstream_lib.proxies()) == {"lib"}
    assert _rtt(_port(proxy.listen)) < FAST

    proxy.add_toxic(type="latency", attributes={"latency": 300})
    assert set(proxy.toxics()) == {"latency_downstream"}
    assert proxy.get_toxic("latency_downstream").attributes == {"latency": 300, "jitter": 0}
    assert 0.29 <= _rtt(_port(proxy.listen)) < 0.6
    assert proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}

    with proxy.down(), pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", _port(proxy.listen)), timeout=5)
    assert _rtt(_port(proxy.listen)) < FAST
    assert upstream_lib.destroy(proxy)
    assert upstream_lib.get_proxy("lib") is None


def test_upstream_library_errors_and_reset(upstream_lib: toxiproxy.Toxiproxy, echo: str) -> None:
    proxy = upstream_lib.create(upstream=echo, name="lib", listen="127.0.0.1:0")
    with pytest.raises(ProxyExists):
        upstream_lib.create(upstream=echo, name="lib")
    with pytest.raises(ProxyExists):  # the library checks first; the raw 409 must map too
        toxiproxy.api.APIConsumer.post("/proxies", json={"name": "lib", "upstream": echo})
    with pytest.raises(NotFound):
        toxiproxy.api.APIConsumer.get("/proxies/nope")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="teleport")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0}, stream="upstream")
    proxy.disable()
    assert upstream_lib.reset()
    fresh = upstream_lib.get_proxy("lib")
    assert fresh.enabled and fresh.toxics() == {}


def test_upstream_library_populate(upstream_lib: toxiproxy.Toxiproxy, echo: str) -> None:
    made = upstream_lib.populate(
        [
            {"name": "one", "upstream": echo, "listen": "127.0.0.1:0"},
            {"name": "two", "upstream": echo, "listen": "127.0.0.1:0"},
        ]
    )
    assert sorted(p.name for p in made) == ["one", "two"]
    upstream_lib.destroy_all()
    assert upstream_lib.proxies() == {}
