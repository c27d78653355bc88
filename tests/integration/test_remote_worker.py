"""Load from many machines, on real processes: a Locust worker on a second "host" (a network
namespace this test makes, joined to this machine by a veth pair on a private /30 the test
picks) joins the master a `harness run` started with `load.master: {bind, port}`, and its
requests count in the verdict. Then the same worker killed mid-run makes the run inconclusive.

The master's host is this machine's own namespace, not a second test-made one: the harness
reaches its containers and binds its exporters on the run's Docker bridge, which lives here.
The test adds one ACCEPT rule for its veth to Docker's DOCKER-USER chain (Docker's FORWARD
policy drops forwarded traffic into the bridge otherwise) and removes it, the namespace, the
veth and every process it started, in `finally`."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.integration.helpers import REPO, leftovers

pytestmark = pytest.mark.docker

# Paced users: a worker whose users never wait starves its own metrics endpoint (gevent runs
# the exporter's thread on the same loop), and a scrape that times out reads as a dropout.
LOCUSTFILE_TEXT = """
from locust import FastHttpUser, constant, task


class PacedHealth(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def health(self) -> None:
        self.client.get("/health")
"""
WORKER_METRICS_PORT = 9646


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=30)


def free_slash30() -> ipaddress.IPv4Network:
    """A /30 in 10.231.0.0/16 no route of this machine overlaps."""
    used = []
    for line in sh("ip", "-4", "route").stdout.splitlines():
        first = line.split()[0]
        if first != "default":
            with suppress(ValueError):
                used.append(ipaddress.IPv4Network(first, strict=False))
    for _ in range(200):
        net = ipaddress.IPv4Network(
            f"10.231.{secrets.randbelow(256)}.{4 * secrets.randbelow(64)}/30"
        )
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free /30 in 10.231.0.0/16")


@contextmanager
def second_host() -> Iterator[tuple[str, str, str]]:
    """(namespace, this machine's address, the namespace's address) on a fresh veth pair."""
    tag = secrets.token_hex(3)
    ns, here, there = f"hw-{tag}", f"hv{tag}a", f"hv{tag}b"
    net = free_slash30()
    a, b = (str(h) for h in net.hosts())
    rule = ["DOCKER-USER", "-i", here, "-j", "ACCEPT"]
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", here, "type", "veth", "peer", "name", there)
        sh("ip", "link", "set", there, "netns", ns)
        sh("ip", "addr", "add", f"{a}/30", "dev", here)
        sh("ip", "link", "set", here, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{b}/30", "dev", there)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", there, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", a)
        sh("iptables", "-I", *rule)
        yield ns, a, b
    finally:
        sh("iptables", "-D", *rule, check=False)
        sh("ip", "link", "del", here, check=False)  # removes its peer too
        sh("ip", "netns", "del", ns, check=False)
        assert ns not in sh("ip", "netns", "list").stdout
        assert here not in sh("ip", "-o", "link").stdout


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


def topology(tmp: Path, bind: str, port: int, worker: str, min_workers: int | None) -> Path:
    (tmp / "paced.py").write_text(LOCUSTFILE_TEXT)
    load = {
        "locustfile": str(tmp / "paced.py"),
        "users": 6,
        "spawn_rate": 6,
        "duration": "14s",
        "master": {"bind": bind, "port": port, "remote_workers": [worker]},
    }
    if min_workers is not None:
        load["min_workers"] = min_workers
    spec = {
        "version": 1,
        "name": "remote-worker",
        "services": {
            "lb": {"kind": "haproxy", "backends": "web", "check": {"interval": "500ms"}},
            "web": {"kind": "web", "sessions": "files"},
            "db": {"kind": "mariadb"},
        },
        "load": load,
        "assertions": [
            {"error_budget": {"max_error_ratio": 0.01}},
            {
                "name": "the remote worker's requests count",
                "promql": 'sum(harness_requests_total{run="$run",instance="locust-remote-1"})',
                "above": 20,
            },
        ],
    }
    path = tmp / "remote-worker.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    return path


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        return subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "COLUMNS": "200"},
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def wait_listening(addr: str, port: int, run: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if run.poll() is not None:
            pytest.fail(
                f"harness run exited {run.returncode} before its master listened: {log.read_text()}"
            )
        with socket.socket() as s, suppress(OSError):
            s.settimeout(0.5)
            s.connect((addr, port))
            return
        time.sleep(0.3)
    pytest.fail(f"the master never listened on {addr}:{port}: {log.read_text()}")


def journal_of(runs: Path) -> dict:
    [run] = sorted(runs.iterdir())
    return json.loads((run / "journal.json").read_text())


def run_with_remote_worker(
    tmp: Path, kill_worker_at: float | None
) -> tuple[int, dict, str, int | None]:
    procs: list[subprocess.Popen[bytes]] = []
    with second_host() as (ns, here, there):
        port = free_port(here)
        worker_addr = f"{there}:{WORKER_METRICS_PORT}"
        topo = topology(tmp, here, port, worker_addr, None)
        runs, run_log, worker_log = tmp / "runs", tmp / "run.log", tmp / "worker.log"
        try:
            run = start(
                [sys.executable, "-m", "harness.cli", "run", str(topo), "--runs-dir", str(runs)],
                run_log,
            )
            procs.append(run)
            wait_listening(here, port, run, run_log)
            worker = start(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    sys.executable,
                    "-m",
                    "harness.cli",
                    "worker",
                    "--master",
                    f"{here}:{port}",
                    "--metrics",
                    worker_addr,
                    str(tmp / "paced.py"),
                ],
                worker_log,
            )
            procs.append(worker)
            if kill_worker_at is not None:
                time.sleep(kill_worker_at)
                os.killpg(worker.pid, signal.SIGKILL)
            code = run.wait(240)
            worker_code = worker.wait(60) if kill_worker_at is None else None
            out = run_log.read_text() + "\n--- worker ---\n" + worker_log.read_text()
            return code, journal_of(runs), out, worker_code
        finally:
            for p in procs:
                stop(p)


def test_a_worker_on_another_host_joins_and_its_requests_are_judged(tmp_path: Path) -> None:
    code, j, out, worker_code = run_with_remote_worker(tmp_path, None)
    assert code == 0, out
    by_process = j["summary"]["requests_by_process"]
    # the master runs no users: every request came from the worker in the other namespace
    assert by_process.get("locust-remote-1", 0) > 20, by_process
    assert by_process.get("locust", 0) == 0, by_process
    remote = next(a for a in j["assertions"] if a["name"] == "the remote worker's requests count")
    assert remote["status"] == "passed" and remote["measured"] > 20, remote
    assert j["workers"]["dropped"] == [] and j["workers"]["expected"] == 1
    # the worker was released by Prometheus's final scrapes and exited on its own, cleanly
    assert worker_code == 0, out
    assert leftovers(j["run_id"]) == []


def test_a_worker_that_dies_mid_run_makes_the_run_inconclusive(tmp_path: Path) -> None:
    code, j, out, _ = run_with_remote_worker(tmp_path, 12.0)
    assert code == 2, out
    assert "dropped out mid-run" in out and "locust-remote-1" in out, out
    assert "min_workers" in out, out
    assert leftovers(j["run_id"]) == []
