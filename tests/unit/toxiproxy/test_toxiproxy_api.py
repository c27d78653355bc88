"""HTTP API of harness.toxiproxy: status codes, JSON shapes, HTTP framing, CLI, metrics.

Raw HTTP (httpx / http.client) on purpose: these tests pin the wire contract that the
Toxiproxy clients rely on, independently of our own client.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.toxiproxy import ToxiproxyServer

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def api(server: ToxiproxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        yield client


def _port(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    return str(body["error"])


def test_version_is_json(api: httpx.Client) -> None:
    response = api.get("/version")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["version"].startswith("2.")


def test_create_binds_ephemeral_port_and_reports_it(api: httpx.Client, echo: str) -> None:
    response = api.post("/proxies", json={"name": "db", "listen": "127.0.0.1:0", "upstream": echo})
    assert response.status_code == 201
    proxy = response.json()
    assert proxy == {
        "name": "db",
        "listen": proxy["listen"],
        "upstream": echo,
        "enabled": True,
        "toxics": [],
    }
    assert re.fullmatch(r"127\.0\.0\.1:\d+", proxy["listen"]) and _port(proxy["listen"]) > 0
    with socket.create_connection(("127.0.0.1", _port(proxy["listen"])), timeout=5) as sock:
        sock.sendall(b"hello")
        assert sock.recv(5) == b"hello"
    assert api.get("/proxies").json() == {"db": proxy}
    assert api.get("/proxies/db").json() == proxy


def test_create_disabled_does_not_listen(api: httpx.Client, echo: str) -> None:
    body = {"name": "off", "listen": "127.0.0.1:0", "upstream": echo, "enabled": False}
    response = api.post("/proxies", json=body)
    assert response.status_code == 201
    assert response.json()["enabled"] is False


def test_duplicate_proxy_is_409(api: httpx.Client, echo: str) -> None:
    body = {"name": "db", "listen": "127.0.0.1:0", "upstream": echo}
    assert api.post("/proxies", json=body).status_code == 201
    assert _error(api.post("/proxies", json=body), 409) == "proxy already exists"


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        json.dumps({"listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}).encode(),
        json.dumps({"name": "x", "listen": "127.0.0.1:0"}).encode(),
        json.dumps({"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"}).encode(),
    ],
)
def test_bad_proxy_body_is_400(api: httpx.Client, content: bytes) -> None:
    _error(api.post("/proxies", content=content), 400)
    assert api.get("/proxies").json() == {}


def test_listen_conflict_is_500(api: httpx.Client, echo: str) -> None:
    first = api.post("/proxies", json={"name": "a", "listen": "127.0.0.1:0", "upstream": echo})
    taken = first.json()["listen"]
    second = api.post("/proxies", json={"name": "b", "listen": taken, "upstream": echo})
    assert "listen" in _error(second, 500)
    assert set(api.get("/proxies").json()) == {"a"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/proxies/nope"),
        ("POST", "/proxies/nope"),
        ("PATCH", "/proxies/nope"),
        ("DELETE", "/proxies/nope"),
        ("GET", "/proxies/nope/toxics"),
        ("POST", "/proxies/nope/toxics"),
    ],
)
def test_missing_proxy_is_404(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path, json={"type": "latency"})
    assert _error(response, 404) == "proxy not found"


def test_delete_is_204_and_stops_listening(api: httpx.Client, echo: str) -> None:
    proxy = api.post("/proxies", json={"name": "d", "listen": "127.0.0.1:0", "upstream": echo})
    response = api.delete("/proxies/d")
    assert response.status_code == 204 and response.content == b""
    assert api.get("/proxies/d").status_code == 404
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", _port(proxy.json()["listen"])), timeout=5)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_update_proxy_partial(api: httpx.Client, echo: str, method: str) -> None:
    created = api.post("/proxies", json={"name": "u", "listen": "127.0.0.1:0", "upstream": echo})
    listen = created.json()["listen"]
    response = api.request(method, "/proxies/u", json={"enabled": False})
    assert response.status_code == 200
    assert response.json() == {**created.json(), "enabled": False}
    enabled = api.request(method, "/proxies/u", json={"enabled": True}).json()
    assert enabled["enabled"] is True and enabled["listen"] == listen
    # Toxiproxy resolves the new listen address first: no port is a 500 with Go's text.
    message = _error(api.request(method, "/proxies/u", json={"listen": "bad"}), 500)
    assert message == "address bad: missing port in address"


def test_toxic_crud(api: httpx.Client, echo: str) -> None:
    api.post("/proxies", json={"name": "t", "listen": "127.0.0.1:0", "upstream": echo})
    response = api.post("/proxies/t/toxics", json={"type": "latency", "attributes": {"latency": 5}})
    assert response.status_code == 200  # real Toxiproxy answers 200, not 201
    toxic = response.json()
    assert toxic == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 5, "jitter": 0},
    }
    dup = api.post("/proxies/t/toxics", json={"type": "latency"})
    assert _error(dup, 409) == "toxic already exists"
    up = {"type": "bandwidth", "stream": "upstream", "name": "bw", "attributes": {"rate": 7}}
    assert api.post("/proxies/t/toxics", json=up).status_code == 200
    listed = api.get("/proxies/t/toxics").json()
    assert [t["name"] for t in listed] == ["bw", "latency_downstream"]  # upstream first
    assert api.get("/proxies/t").json()["toxics"] == listed
    assert api.get("/proxies/t/toxics/bw").json()["attributes"] == {"rate": 7}

    patched = api.patch("/proxies/t/toxics/latency_downstream", json={"attributes": {"jitter": 2}})
    assert patched.status_code == 200
    assert patched.json()["attributes"] == {"latency": 5, "jitter": 2}  # merged
    posted = api.post("/proxies/t/toxics/latency_downstream", json={"toxicity": 0.25})
    assert posted.json()["toxicity"] == 0.25 and posted.json()["attributes"]["jitter"] == 2

    assert api.delete("/proxies/t/toxics/bw").status_code == 204
    assert _error(api.get("/proxies/t/toxics/bw"), 404) == "toxic not found"
    _error(api.delete("/proxies/t/toxics/bw"), 404)
    _error(api.patch("/proxies/t/toxics/bw", json={}), 404)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "teleport"}, "invalid toxic type"),
        ({}, "invalid toxic type"),
        ({"type": "latency", "stream": "sideways"}, "stream was invalid"),
        ({"type": "latency", "attributes": {"latency": "fast"}}, "latency"),
    ],
)
def test_bad_toxic_is_400(api: httpx.Client, echo: str, body: dict, message: str) -> None:
    api.post("/proxies", json={"name": "t", "listen": "127.0.0.1:0", "upstream": echo})
    assert message in _error(api.post("/proxies/t/toxics", json=body), 400)
    assert api.get("/proxies/t/toxics").json() == []


def test_populate_creates_keeps_and_replaces(api: httpx.Client, echo: str) -> None:
    specs = [
        {"name": "a", "listen": "127.0.0.1:0", "upstream": echo},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": echo},
    ]
    response = api.post("/populate", json=specs)
    assert response.status_code == 201
    created = {p["name"]: p for p in response.json()["proxies"]}
    assert set(created) == {"a", "b"} and all(p["enabled"] for p in created.values())
    api.post("/proxies/a/toxics", json={"type": "latency"})

    again = [
        {"name": "a", "listen": created["a"]["listen"], "upstream": echo},  # unchanged: kept
        {"name": "b", "listen": created["b"]["listen"], "upstream": "127.0.0.1:9"},  # replaced
    ]
    result = {p["name"]: p for p in api.post("/populate", json=again).json()["proxies"]}
    assert len(result["a"]["toxics"]) == 1
    assert result["b"]["upstream"] == "127.0.0.1:9"
    _error(api.post("/populate", json={"name": "not-a-list"}), 400)
    _error(api.post("/populate", json=[{"name": "c"}]), 400)
    assert set(api.get("/proxies").json()) == {"a", "b"}  # invalid batch changed nothing


def test_reset_enables_all_and_clears_toxics(api: httpx.Client, echo: str) -> None:
    created = api.post("/proxies", json={"name": "r", "listen": "127.0.0.1:0", "upstream": echo})
    api.post("/proxies/r/toxics", json={"type": "timeout"})
    api.post("/proxies/r", json={"enabled": False})
    response = api.post("/reset")
    assert response.status_code == 204
    assert api.get("/proxies/r").json() == {**created.json(), "enabled": True, "toxics": []}


def test_routing_errors(api: httpx.Client) -> None:
    assert api.get("/nowhere").status_code == 404
    assert api.get("/proxies/a/b/c/d/e").status_code == 404
    not_allowed = api.delete("/proxies")  # gorilla/mux: 405 with an empty body
    assert not_allowed.status_code == 405 and not_allowed.content == b""
    assert api.put("/proxies/x/toxics/y", json={}).status_code == 405  # route first
    browser = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert browser.status_code == 403  # like Toxiproxy: API is not for browsers


def test_keep_alive_and_chunked_bodies(server: ToxiproxyServer, echo: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", "/version")
        first = conn.getresponse()
        assert first.status == 200 and json.loads(first.read())["version"]
        sock = conn.sock
        body = json.dumps({"name": "k", "listen": "127.0.0.1:0", "upstream": echo})
        conn.request(
            "POST",
            "/proxies",
            body=iter([body[:10].encode(), body[10:].encode()]),
            headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
            encode_chunked=True,
        )
        second = conn.getresponse()
        assert second.status == 201 and json.loads(second.read())["name"] == "k"
        conn.request("DELETE", "/proxies/k")
        third = conn.getresponse()
        assert third.status == 204 and third.read() == b""
        assert conn.sock is sock  # all three requests on one TCP connection
    finally:
        conn.close()


def test_metrics_move_while_connection_open(api: httpx.Client, echo: str) -> None:
    created = api.post("/proxies", json={"name": "m", "listen": "127.0.0.1:0", "upstream": echo})
    labels = f'listener="{created.json()["listen"]}",proxy="m",upstream="{echo}"'

    def sample(name: str, direction: str | None = None) -> float:
        text = api.get("/metrics").text
        prefix = f'direction="{direction}",' if direction else ""
        match = re.search(rf"^{name}\{{{re.escape(prefix + labels)}\}} (\S+)$", text, re.M)
        assert match, text
        return float(match.group(1))

    response = api.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE toxiproxy_proxy_sent_bytes_total counter" in response.text
    assert sample("toxiproxy_proxy_connections_active") == 0
    with socket.create_connection(("127.0.0.1", _port(created.json()["listen"])), timeout=5) as s:
        total = 0
        for size in (1000, 2000):
            s.sendall(b"m" * size)
            got = 0
            while got < size:
                got += len(s.recv(65536))
            total += size
            for name in ("received", "sent"):
                for direction in ("upstream", "downstream"):
                    assert sample(f"toxiproxy_proxy_{name}_bytes_total", direction) == total
            assert sample("toxiproxy_proxy_connections_active") == 1  # still open
    assert sample("toxiproxy_proxy_connections_total") == 1
    deadline = time.monotonic() + 5
    while sample("toxiproxy_proxy_connections_active") != 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sample("toxiproxy_proxy_connections_active") == 0


@pytest.fixture
def image_copy(tmp_path: Path) -> Path:
    """What the container gets: only ``harness/toxiproxy/*.py`` (no ``harness/__init__``)."""
    target = tmp_path / "harness" / "toxiproxy"
    target.mkdir(parents=True)
    for source in (REPO / "harness" / "toxiproxy").glob("*.py"):
        shutil.copy(source, target / source.name)
    return tmp_path


# -S: no site-packages (so no httpx, no repo install), -E -s: ignore env and user site.
BARE_PYTHON = [sys.executable, "-S", "-E", "-s"]


def test_server_modules_import_only_stdlib(image_copy: Path) -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import harness.toxiproxy, harness.toxiproxy.__main__, harness.toxiproxy.client\n"
        "assert harness.toxiproxy.__file__.startswith(sys.argv[1]), harness.toxiproxy.__file__\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'harness'}))\n"
    )
    out = subprocess.run(
        [*BARE_PYTHON, "-c", code, str(image_copy)],
        cwd=image_copy,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_serves_and_exits_cleanly_on_sigterm(image_copy: Path, echo: str) -> None:
    config = image_copy / "proxies.json"
    config.write_text(json.dumps([{"name": "cfg", "listen": "127.0.0.1:0", "upstream": echo}]))
    proc = subprocess.Popen(
        [*BARE_PYTHON, "-m", "harness.toxiproxy", "--port", "0", "--config", str(config)],
        cwd=image_copy,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, proc.kill)  # bounds the blocking stderr reads below
    watchdog.start()
    try:
        assert proc.stderr is not None
        seen, match = [], None
        for line in proc.stderr:  # "... toxiproxy API listening on 127.0.0.1:PORT ..."
            seen.append(line)
            if match := re.search(r"API listening on 127\.0\.0\.1:(\d+)", line):
                break
        assert match, seen
        assert any("proxy cfg listening" in line for line in seen)  # config applied first
        base = f"http://127.0.0.1:{match.group(1)}"
        assert httpx.get(f"{base}/proxies", timeout=5).json()["cfg"]["enabled"] is True
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert "shutting down" in proc.stderr.read()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
