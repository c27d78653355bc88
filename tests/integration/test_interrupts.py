"""Rollback always happens. Runs are interrupted with SIGINT or SIGTERM at random moments
inside three overlapping fault windows (pause, Toxiproxy toxic, iptables partition), with
--keep so the containers survive for inspection: no fault may remain. A SIGKILLed harness
rolls back nothing by itself; `harness gc --rollback-only` must then undo every fault from the
journal, and `harness gc` removes the rest."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import httpx
import pytest

from tests.integration.helpers import REPO, harness, leftovers, locust_pids, wait_journal

pytestmark = pytest.mark.docker
TOPOLOGY = "tests/integration/topologies/fault-windows.yaml"


def start(runs: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", TOPOLOGY, "--keep", "--runs-dir", str(runs)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def wait_all_injected(runs: Path, timeout: float = 180) -> dict:
    return wait_journal(
        runs,
        lambda j: len(j["faults"]) == 3 and all(f["status"] == "injected" for f in j["faults"]),
        "the three faults were never all injected",
        timeout,
    )


def faults_left(run_id: str) -> list[str]:
    """Every trace of the three faults still on the machine, checked from outside."""
    client = docker.from_env()
    found = []
    conts = {c.labels["io.harness.instance"]: c for c in client.containers.list(
        all=True, filters={"label": f"io.harness.run={run_id}"})}
    found += [f"{i} is {c.status}" for i, c in conts.items() if c.status != "running"]
    proxy_ip = next(iter(conts["toxiproxy"].attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    for p in httpx.get(f"http://{proxy_ip}:8474/proxies", timeout=5).json().values():
        found += [f"toxic {t['name']} on {p['name']}" for t in p["toxics"]]
        if not p["enabled"]:
            found.append(f"proxy {p['name']} disabled")
    pid = conts["web-2"].attrs["State"]["Pid"]
    rules = subprocess.run(["nsenter", "-t", str(pid), "-n", "iptables", "-S"], capture_output=True, text=True).stdout
    found += [f"iptables: {line}" for line in rules.splitlines() if "HARNESS" in line]
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_fault_windows_rolls_every_fault_back(tmp_path: Path, sig: signal.Signals) -> None:
    proc = start(tmp_path)
    run_id = None
    try:
        j = wait_all_injected(tmp_path)
        run_id = j["run_id"]
        delay = random.uniform(0, 8)  # somewhere inside the 15 s windows
        print(f"interrupting {delay:.2f}s into the windows")
        time.sleep(delay)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 2, out
        journal = json.loads(next(tmp_path.glob("*/journal.json")).read_text())
        assert journal["status"] == "interrupted"
        assert {f["status"] for f in journal["faults"]} == {"rolled_back"}
        assert faults_left(run_id) == []
    finally:
        proc.kill()
        if run_id:
            harness("down", run_id)
    assert leftovers(run_id) == []


def test_gc_rolls_back_what_a_sigkilled_harness_left(tmp_path: Path) -> None:
    proc = start(tmp_path)
    run_id = None
    try:
        run_id = wait_all_injected(tmp_path)["run_id"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        for pid in locust_pids(run_id):  # Locust outlives a SIGKILLed harness; end only this run's
            os.kill(pid, signal.SIGKILL)
        left = faults_left(run_id)
        assert any("paused" in x for x in left) and any("toxic" in x for x in left)
        assert any("iptables" in x for x in left)
        gc = harness("gc", "--rollback-only", "--runs-dir", str(tmp_path))
        assert gc.returncode == 0, gc.stdout + gc.stderr
        assert faults_left(run_id) == []
        assert "rolled back" in gc.stdout
        assert harness("gc", run_id, "--runs-dir", str(tmp_path)).returncode == 0
        assert leftovers(run_id) == []
    finally:
        proc.kill()
        if run_id:
            harness("down", run_id)
