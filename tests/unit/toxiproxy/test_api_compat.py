"""The HTTP API answers as Toxiproxy 2.x does (issue 14, ask 1): what real clients send and parse.

Each test pins one deviation that broke a real client or one of Toxiproxy's own API tests;
the expected statuses, headers and texts are Toxiproxy 2.12's (checked side by side with a
build from source, see conftest.py).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from packaging.version import Version

from harness.toxiproxy.client import ToxiproxyClient


@pytest.fixture
def api(toxiproxy_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=toxiproxy_url, timeout=5) as client:
        yield client


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _error(response: httpx.Response, status: int) -> str:
    """Toxiproxy's error: JSON text sent through Go's http.Error, so text/plain."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    body = json.loads(response.text)
    assert body["status"] == status
    return str(body["error"])


def test_enabled_null_means_default(api: httpx.Client, echo: str) -> None:
    """The Ruby client sends ``"enabled": null`` on create."""
    body = {"name": "rb", "listen": "127.0.0.1:0", "upstream": echo, "enabled": None}
    response = api.post("/proxies", json=body)
    assert response.status_code == 201
    assert response.json()["enabled"] is True


def test_every_routed_response_has_a_request_id(api: httpx.Client, echo: str) -> None:
    ids = {
        api.get("/version").headers["x-toxiproxy-request-id"],
        api.get("/proxies").headers["x-toxiproxy-request-id"],
        api.get("/proxies/missing").headers["x-toxiproxy-request-id"],
    }
    assert len(ids) == 3 and all(len(i) == 20 for i in ids)


def test_listen_is_resolved_in_json_and_metrics(toxiproxy_url: str, echo: str) -> None:
    port = _free_port()
    with httpx.Client(base_url=toxiproxy_url, timeout=5) as api:
        body = {"name": "db", "listen": f"localhost:{port}", "upstream": echo}
        created = api.post("/proxies", json=body).json()
        assert created["listen"] == f"127.0.0.1:{port}"
        assert api.get("/proxies").json()["db"]["listen"] == f"127.0.0.1:{port}"
        if "toxiproxy_proxy" in (metrics := api.get("/metrics").text):  # embedded: always
            assert f'listener="127.0.0.1:{port}"' in metrics
            assert "localhost" not in metrics
        wildcard = api.post("/proxies", json={"name": "any", "upstream": echo}).json()
        assert wildcard["listen"].startswith(("[::]:", "0.0.0.0:"))  # Go's dual-stack socket


def test_disabled_proxy_keeps_listen_as_given(api: httpx.Client, echo: str) -> None:
    port = _free_port()
    body = {"name": "off", "listen": f"localhost:{port}", "upstream": echo, "enabled": False}
    assert api.post("/proxies", json=body).json()["listen"] == f"localhost:{port}"
    enabled = api.patch("/proxies/off", json={"enabled": True}).json()
    assert enabled["listen"] == f"127.0.0.1:{port}"


def test_populate_keeps_entries_before_a_failure(api: httpx.Client, echo: str) -> None:
    port = _free_port()
    specs = [
        {"name": "one", "listen": f"localhost:{port}", "upstream": echo},
        {"name": "two", "listen": "local373", "upstream": echo},
        {"name": "three", "listen": "127.0.0.1:0", "upstream": echo},
    ]
    response = api.post("/populate", json=specs)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "listen tcp: address local373: missing port in address"
    assert [p["name"] for p in body["proxies"]] == ["one"]
    assert set(api.get("/proxies").json()) == {"one"}


def test_populate_checks_required_fields_first(api: httpx.Client, echo: str) -> None:
    specs = [{"name": "one", "listen": "127.0.0.1:0", "upstream": echo}, {"upstream": echo}]
    response = api.post("/populate", json=specs)
    assert response.status_code == 400
    assert response.json() == {
        "error": "missing required field: name at proxy 2",
        "status": 400,
        "proxies": None,
    }
    assert api.get("/proxies").json() == {}


def test_populate_leaves_an_identical_proxy_untouched(api: httpx.Client, echo: str) -> None:
    port = _free_port()
    first = api.post(
        "/populate", json=[{"name": "db", "listen": f"127.0.0.1:{port}", "upstream": echo}]
    )
    assert first.status_code == 201
    api.post("/proxies/db/toxics", json={"type": "latency", "attributes": {"latency": 5}})
    again = [{"name": "db", "listen": f"localhost:{port}", "upstream": echo, "enabled": False}]
    kept = api.post("/populate", json=again).json()["proxies"][0]
    assert kept["enabled"] is True and kept["listen"] == f"127.0.0.1:{port}"
    assert [t["name"] for t in kept["toxics"]] == ["latency_downstream"]


def test_populate_wants_a_list(api: httpx.Client) -> None:
    response = api.post("/populate", json={"proxies": []})
    assert response.status_code == 400
    assert response.json()["error"].startswith("bad request body: json: cannot unmarshal object")
    assert api.post("/populate", json=[]).json() == {"proxies": None}


def test_noop_toxic(api: httpx.Client, echo: str) -> None:
    api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": echo})
    response = api.post("/proxies/p/toxics", json={"type": "noop"})
    assert response.status_code == 200
    assert response.json() == {
        "attributes": {},
        "name": "noop_downstream",
        "type": "noop",
        "stream": "downstream",
        "toxicity": 1,
    }


def test_port_conflict_message(api: httpx.Client, echo: str) -> None:
    port = _free_port()
    api.post("/proxies", json={"name": "a", "listen": f"localhost:{port}", "upstream": echo})
    clash = api.post(
        "/proxies", json={"name": "b", "listen": f"localhost:{port}", "upstream": echo}
    )
    message = _error(clash, 500)
    assert message == f"listen tcp 127.0.0.1:{port}: bind: address already in use"


def test_validation_is_as_loose_as_toxiproxy(api: httpx.Client, echo: str) -> None:
    api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": "nohost"})
    toxic = {"type": "latency", "toxicity": 5, "attributes": {"latency": -100}}
    created = api.post("/proxies/p/toxics", json=toxic)
    assert created.status_code == 200 and created.json()["attributes"]["latency"] == -100
    updated = api.patch("/proxies/p/toxics/latency_downstream", json={"toxicity": -3})
    assert updated.status_code == 200 and updated.json()["toxicity"] == -3


def test_validation_is_as_strict_as_toxiproxy(api: httpx.Client, echo: str) -> None:
    api.post("/proxies", json={"name": "p", "listen": "127.0.0.1:0", "upstream": echo})
    stream = api.post("/proxies/p/toxics", json={"type": "latency", "stream": ""})
    assert _error(stream, 400) == "stream was invalid, can be either upstream or downstream"
    fraction = api.post(
        "/proxies/p/toxics", json={"type": "latency", "attributes": {"latency": 1.5}}
    )
    assert _error(fraction, 400) == (
        "bad request body: json: cannot unmarshal number 1.5 into Go struct field "
        "LatencyToxic.attributes.latency of type int64"
    )
    enabled = api.post("/proxies", json={"name": "q", "upstream": echo, "enabled": "yes"})
    assert _error(enabled, 400) == (
        "bad request body: json: cannot unmarshal string into Go struct field "
        "Proxy.enabled of type bool"
    )


def test_request_without_host_is_rejected(toxiproxy_url: str) -> None:
    host, port = toxiproxy_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 400 Bad Request")
    assert reply.endswith(b"400 Bad Request: missing required Host header")


def test_routing_details(api: httpx.Client) -> None:
    missing = api.get("/nowhere")
    assert (missing.status_code, missing.text) == (404, "404 page not found\n")
    assert missing.headers["content-type"] == "text/plain; charset=utf-8"
    assert "x-toxiproxy-request-id" not in missing.headers
    assert api.get("/proxies/").status_code == 404  # no trailing-slash redirect
    head = api.head("/version")
    assert head.status_code == 405  # HEAD is not routed
    wrong = api.delete("/version")
    assert (wrong.status_code, wrong.content) == (405, b"")
    browser = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert (browser.status_code, browser.text) == (403, "User agent not allowed\n")


def test_version_is_a_release_clients_accept(api: httpx.Client, toxiproxy_url: str) -> None:
    response = api.get("/version")
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    version = Version(response.json()["version"])
    assert not version.is_prerelease and version >= Version("2.6.0")
    with ToxiproxyClient(toxiproxy_url) as client:
        assert Version(client.version()) == version
