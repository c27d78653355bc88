"""images/lb/nginx-upstreams.sh, the nginx-lb's active health checks and its only rewriter of the
upstream's server lines, run for real with bash on this host (a local HTTP server as the
backend; the reload is replaced by `true`, Nginx itself runs in tests/integration)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
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


def env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "NGINX_CONF": str(tmp / "nginx.conf"),
        "NGINX_STATE": str(tmp / "state"),
        "NGINX_CHECKS": str(tmp / "checks"),
        "NGINX_RELOAD": "true",
        "NGINX_WORKERS": "true",  # no Nginx here (the host's pgrep would see the containers')
        "NGINX_PID": str(tmp / "nginx.pid"),
        **extra,
    }


def run(tmp: Path, *args: str, code: int = 0) -> str:
    p = subprocess.run(["bash", str(SCRIPT), *args], env=env(tmp), capture_output=True, text=True)
    assert p.returncode == code, p.stderr
    return p.stdout


def check(tmp: Path, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    """`nginx-upstreams.sh check` in its own process group, its stderr (and the reload's) in `log`."""
    with log.open("w") as out:
        return subprocess.Popen(
            ["bash", str(SCRIPT), "check"],
            env=env(tmp, **extra),
            stderr=out,
            stdout=out,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait()


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
    assert run(tmp_path, "up", "10.0.0.11") == ""  # no health checks: nothing to wait for


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
    Backend.status, Backend.paths = 200, []
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
    proc = check(tmp_path, log)
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
        stop(proc)


def down_lines(log: Path, name: str) -> int:
    return log.read_text().count(f"nginx-check: Server app/{name} is DOWN")


def test_each_down_line_follows_a_reload_that_took_that_server_out(tmp_path: Path) -> None:
    """web-1 refuses at once, web-2 accepts and never answers (each of its checks runs the whole
    timeout), so web-2 is found down ~0.4 s after web-1, while web-1's reload (1 s here) runs.
    Every DOWN line must follow a reload whose config had that server `down`."""
    hang = socket.socket()
    hang.bind(("127.0.0.3", 0))
    hang.listen(64)
    port = hang.getsockname()[1]  # nothing listens on 127.0.0.2 at that port: refused
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        CONF.replace("10.0.0.11:80", f"127.0.0.2:{port}").replace(
            "10.0.0.12:80", f"127.0.0.3:{port}"
        )
    )
    (tmp_path / "checks").write_text(
        f"/health 0.1 0.2 2 2\nweb-1 127.0.0.2 {port}\nweb-2 127.0.0.3 {port}\n"
    )
    log = tmp_path / "log"
    reload = f"echo RELOAD $(awk '/ down;/ {{print $2}}' {conf}) >&2; sleep 1"
    proc = check(tmp_path, log, NGINX_RELOAD=reload)
    try:
        wait_for(
            "both DOWN after a second reload",
            lambda: (
                log.read_text().count("RELOAD") >= 2
                and "web-2 is DOWN" in log.read_text().rsplit("RELOAD", 1)[1]
            ),
        )
    finally:
        stop(proc)
        hang.close()
    reloaded = ""
    for line in log.read_text().splitlines():
        if line.startswith("RELOAD"):
            reloaded = line
        for name, ip in (("web-1", "127.0.0.2"), ("web-2", "127.0.0.3")):
            if line.endswith(f"app/{name} is DOWN"):
                assert f"{ip}:{port}" in reloaded, log.read_text()


def test_the_checks_end_with_the_script(tmp_path: Path, backend: int) -> None:
    (tmp_path / "nginx.conf").write_text(CONF.replace("10.0.0.12:80", f"127.0.0.1:{backend}"))
    (tmp_path / "checks").write_text(f"/health/live 0.1 0.5 3 2\nweb-2 127.0.0.1 {backend}\n")
    proc = check(tmp_path, tmp_path / "log")
    try:
        wait_for("check", lambda: Backend.paths)
        proc.terminate()  # the script alone, as supervise.sh stops it
        proc.wait(timeout=3)
        time.sleep(0.3)
        seen = len(Backend.paths)
        time.sleep(0.5)
        assert len(Backend.paths) == seen, "a check loop outlived the script"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)


def test_held_down_servers_are_said_again_after_nginx_restarts(
    tmp_path: Path, backend: int
) -> None:
    """A stopped Nginx has no pidfile; the one started after it starts from the config on disk
    and announces every server fresh, so the script says again which are down."""
    Backend.status = 503
    (tmp_path / "nginx.conf").write_text(CONF.replace("10.0.0.12:80", f"127.0.0.1:{backend}"))
    (tmp_path / "checks").write_text(f"/health/live 0.1 0.5 2 2\nweb-2 127.0.0.1 {backend}\n")
    pidfile, log = tmp_path / "nginx.pid", tmp_path / "log"
    pidfile.write_text("100\n")
    proc = check(tmp_path, log)
    try:
        wait_for("DOWN", lambda: down_lines(log, "web-2") == 1)
        time.sleep(1.1)  # the script has seen master 100
        pidfile.unlink()  # Nginx stopped
        time.sleep(1.2)
        pidfile.write_text("200\n")  # and started again
        wait_for("DOWN said again", lambda: down_lines(log, "web-2") == 2, timeout=3)
    finally:
        stop(proc)


def test_a_failed_reload_is_tried_again(tmp_path: Path, backend: int) -> None:
    Backend.status = 503
    (tmp_path / "nginx.conf").write_text(CONF.replace("10.0.0.12:80", f"127.0.0.1:{backend}"))
    (tmp_path / "checks").write_text(f"/health/live 0.1 0.5 2 2\nweb-2 127.0.0.1 {backend}\n")
    log, ok = tmp_path / "log", tmp_path / "reload-works"
    proc = check(tmp_path, log, NGINX_RELOAD=f"test -e {ok}")
    try:
        wait_for("a failed reload", lambda: "reload failed: web-2" in log.read_text())
        ok.touch()
        wait_for("DOWN once the reload works", lambda: down_lines(log, "web-2") == 1, timeout=2)
    finally:
        stop(proc)


def test_a_server_a_deploy_holds_out_is_not_said_up_and_up_waits_for_a_good_check(
    tmp_path: Path, backend: int
) -> None:
    """lbctl.wait_up asks `up IP`: 0 once the checks serve the server (no `down` from them, and a
    good check since the deploy's last change); a server the deploy holds out is never said UP."""
    (tmp_path / "nginx.conf").write_text(CONF.replace("10.0.0.12:80", f"127.0.0.1:{backend}"))
    (tmp_path / "checks").write_text(f"/health/live 0.1 0.5 2 2\nweb-2 127.0.0.1 {backend}\n")
    log = tmp_path / "log"
    run(tmp_path, "admin", "127.0.0.1", "")  # a deploy took web-2 out
    Backend.status = 503
    proc = check(tmp_path, log)
    try:
        wait_for("DOWN", lambda: down_lines(log, "web-2") == 1)
        run(tmp_path, "up", "127.0.0.1", code=1)
        Backend.status = 200
        wait_for("checks passing", lambda: not (tmp_path / "state/down/web-2").exists())
        time.sleep(0.3)
        assert "web-2 is UP" not in log.read_text(), "the deploy still holds it out"
        run(tmp_path, "up", "127.0.0.1")
    finally:
        stop(proc)
    run(tmp_path, "admin", "", "")  # put back: the checks' last pass was before that
    run(tmp_path, "up", "127.0.0.1", code=1)
    (tmp_path / "state/ok/web-2").touch()  # a good check since
    run(tmp_path, "up", "127.0.0.1")
    (tmp_path / "state/down/web-2").write_text("127.0.0.1\n")  # then held down again
    run(tmp_path, "up", "127.0.0.1", code=1)
    assert run(tmp_path, "up", "10.0.0.11") == ""  # not checked: nothing to wait for


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
    # fall x (inter + timeout), one more inter for the phase, 1 s for the reload
    assert bound == 2 * (0.5 + 0.5) + 0.5 + 1.0 and how.startswith("active")
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
