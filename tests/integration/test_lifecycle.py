"""Lifecycle guarantees on real Docker: interrupted runs clean up, bad input starts nothing,
the base image can be bootstrapped without a registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from harness.runtime import images
from tests.integration.helpers import REPO, harness, journal, leftovers, locust_pids

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_load_rolls_back_and_removes_everything(tmp_path: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "topologies/ha.yaml", "--runs-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 180
    # wait until the load phase runs (the journal says so), then interrupt
    while time.monotonic() < deadline:
        runs = list(tmp_path.glob("*/journal.json"))
        if runs and '"name": "load"' in runs[0].read_text():
            break
        time.sleep(0.5)
    time.sleep(2)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    j = journal(tmp_path)
    assert j["status"] == "interrupted"
    assert any(p["name"] == "down" and p["status"] == "completed" for p in j["phases"])
    assert leftovers(j["run_id"]) == []
    # Locust, a child in its own session, must be gone too
    assert locust_pids(j["run_id"]) == []


def test_invalid_topology_exits_3_with_one_line_per_problem_and_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    src = (REPO / "topologies/ha.yaml").read_text()
    line = src.splitlines().index("    balance: roundrobin") + 1
    bad.write_text(src.replace("balance: roundrobin", "balanse: roundrobin").replace("backends: web", "backends: wbe"))
    before = leftovers()
    proc = harness("run", str(bad), "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"{bad}:{line}: services.lb.balanse: unknown key 'balanse' (did you mean 'balance'?)"]
    assert "Traceback" not in proc.stderr
    assert leftovers() == before
    assert not (tmp_path / "runs").exists()


def test_gc_removes_what_a_sigkilled_harness_left(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "topologies/ha.yaml", "--runs-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    run_id = None
    while time.monotonic() < deadline:  # this run's own containers, not any other run's
        runs = list(tmp_path.glob("*/journal.json"))
        run_id = runs[0].parent.name if runs else None
        if run_id and len(leftovers(run_id)) >= 5:
            break
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run_id is not None
    assert leftovers(run_id), "the killed run should have left containers behind"
    for pid in locust_pids(run_id):
        os.kill(pid, signal.SIGKILL)
    gc = harness("gc", run_id, "--runs-dir", str(tmp_path))
    assert gc.returncode == 0, gc.stderr
    assert leftovers(run_id) == []


def test_base_image_is_bootstrapped_with_debootstrap_when_absent() -> None:
    tag = "harness-test/bootstrap:latest"
    client = docker.from_env()
    try:
        images.bootstrap_base_image(tag, progress=lambda _: None)
        out = client.containers.run(tag, ["cat", "/etc/debian_version"], remove=True)
        assert out.decode().strip().startswith("12.")
    finally:
        try:
            client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def test_a_system_not_steady_before_the_faults_is_inconclusive_not_failed(tmp_path: Path) -> None:
    proc = harness("run", "tests/integration/topologies/not-steady.yaml", "--runs-dir", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    j = journal(tmp_path)
    assert j["status"] == "inconclusive" and "not steady" in j["error"]
    assert "0/2 backends UP" in j["error"]
    assert j["faults"] == []  # no fault was injected into an unsteady system
    assert next(p for p in j["phases"] if p["name"] == "baseline")["status"] == "failed"
    assert leftovers(j["run_id"]) == []
