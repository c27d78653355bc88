"""images/lb/nginx-upstreams.sh, the nginx-lb's active health checks and its only rewriter of the
upstream's server lines, run for real with bash on this host (a local HTTP server as the
backend; the reload is replaced by `true`, Nginx itself runs in tests/integration)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.kinds import nginx_lb
from harness.plan.build import make_plan
from harness.spec.loader import load_topology

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "images" / "lb" / "nginx-upstreams.sh"
CONF = """upstream app {
        zone app 256k;
        server 10.0.0.11:80 weight=1 max_fails=1 fail_timeout=10s;
        server 10.0.0.12:80 weight=1 max_fails=1 fail_timeout=10s;
}
server {
    listen 80 default_server;
}
"""


def env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NGINX_CONF": str(tmp / "nginx.conf"),
        "NGINX_STATE": str(tmp / "state"),
        "NGINX_CHECKS": str(tmp / "checks"),
        "NGINX_RELOAD": "true",
        "NGINX_WORKERS": "true",  # no Nginx here (the host's pgrep would see the containers')
    }


def run(tmp: Path, *args: str) -> str:
    p = subprocess.run(["bash", str(SCRIPT), *args], env=env(tmp), capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_a_deploy_takes_a_server_down_sets_weights_and_restores_the_stable_config(
    tmp_path: Path,
) -> None:
    (tmp_path / "nginx.conf").write_text(CONF)
    run(tmp_path, "admin", "10.0.0.11", "10.0.0.12=100")
    conf = (tmp_path / "nginx.conf").read_text()
    assert "server 10.0.0.11:80 weight=1 max_fails=1 fail_timeout=10s down;" in conf
    assert "server 10.0.0.12:80 max_fails=1 fail_timeout=10s weight=100;" in conf
    assert "listen 80 default_server;" in conf
    assert run(tmp_path, "restore") == ""
    assert (tmp_path / "nginx.conf").read_text() == CONF
    assert run(tmp_path, "restore").strip() == "unchanged"


class Backend(BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        Backend.paths.append(self.path)
        self.send_response(Backend.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def wait_for(what: str, check: object, timeout: float = 5.0) -> None:
    t0 = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - t0 < timeout, f"no {what} within {timeout}s"
        time.sleep(0.05)


def test_fall_failed_checks_mark_a_server_down_and_rise_good_ones_bring_it_back(
    tmp_path: Path, backend: int
) -> None:
    conf = CONF.replace("10.0.0.12:80", f"127.0.0.1:{backend}")
    (tmp_path / "nginx.conf").write_text(conf)
    (tmp_path / "checks").write_text(f"/health/live 0.1 0.5 3 2\nweb-2 127.0.0.1 {backend}\n")
    log = tmp_path / "log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", str(SCRIPT), "check"], env=env(tmp_path), stderr=out, start_new_session=True
        )
    try:
        wait_for("check", lambda: Backend.paths)
        assert set(Backend.paths) == {"/health/live"}
        time.sleep(0.5)
        assert " down;" not in (tmp_path / "nginx.conf").read_text(), "healthy: kept in"
        Backend.status = 503
        failing = time.monotonic()
        wait_for(
            "down",
            lambda: (
                f"127.0.0.1:{backend} " in (tmp_path / "nginx.conf").read_text()
                and " down;" in (tmp_path / "nginx.conf").read_text()
            ),
        )
        assert time.monotonic() - failing >= 0.2, "not before the third failed check"
        wait_for("DOWN line", lambda: "nginx-check: Server app/web-2 is DOWN" in log.read_text())
        assert (
            "10.0.0.11:80 weight=1 max_fails=1 fail_timeout=10s;"
            in (tmp_path / "nginx.conf").read_text()
        ), "the other server is untouched"
        Backend.status = 200
        wait_for("UP line", lambda: "nginx-check: Server app/web-2 is UP" in log.read_text())
        assert " down;" not in (tmp_path / "nginx.conf").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def test_check_reaches_the_container_and_gives_the_ejection_bound(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text((REPO / "topologies" / "nginx-active-check.yaml").read_text())
    topo = load_topology(path)
    plan = make_plan(topo, "r1", "10.99.0.0/24", [])
    lb = plan.container("lb")
    head, *servers = lb.files[nginx_lb.CHECKS].splitlines()
    assert head == "/health/live 0.5 0.5 2 2"
    assert servers == [f"{c.instance} {c.ip} 80" for c in plan.instances("web")]
    assert nginx_lb.DESCRIPTOR.ejection is not None
    bound, how = nginx_lb.DESCRIPTOR.ejection(topo.services["lb"])
    assert bound == 2 * (0.5 + 0.5) + 0.5 and how.startswith("active")
    assert (
        nginx_lb.DESCRIPTOR.log.backend[0]
        .search(  # type: ignore[union-attr]
            "nginx-check: Server app/web-1 is DOWN"
        )
        .group(3)
        == "DOWN"
    )


def test_a_check_on_a_fastcgi_pool_is_refused_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "version: 1\nname: t\nservices:\n"
        "  lb: {kind: nginx-lb, backends: fpm, protocol: fastcgi, check: {path: /health}}\n"
        "  fpm: {kind: php-fpm}\n  redis: {kind: redis}\n  mysql: {kind: mariadb}\n"
    )
    with pytest.raises(SpecError) as err:
        load_topology(path)
    [line] = str(err.value).splitlines()
    assert "t.yaml:4" in line and "check" in line and "use protocol: http, or drop check" in line
