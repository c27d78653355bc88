"""The gate never passes what it could not measure, on real stacks: the run's Prometheus killed
mid-load ends inconclusive (exit 2) with a complete reason; the shipped experiments, run as a
new user runs them, hold."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from tests.integration.helpers import REPO, harness, journal, leftovers, wait_journal

pytestmark = pytest.mark.docker


def test_prometheus_killed_mid_run_is_inconclusive_with_a_complete_reason(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "tests/integration/topologies/prom-dies.yaml",
         "--runs-dir", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        j = wait_journal(tmp_path, lambda j: bool(j.get("load_started_at")), "the load never started")
        time.sleep(3)
        [prom] = docker.from_env().containers.list(
            filters={"label": [f"io.harness.run={j['run_id']}", "io.harness.instance=prometheus"]}
        )
        prom.kill()
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out
    j = journal(tmp_path)
    assert j["status"] in ("error", "inconclusive") and j["exit_code"] == 2
    error = j["error"]
    # the reason is complete: what is missing, and why
    assert "Prometheus" in error and "unreachable" in error, error
    assert not error.rstrip().endswith(":"), error
    assert not any(a["status"] == "passed" for a in j["assertions"])
    assert leftovers(j["run_id"]) == []


def test_the_shipped_experiments_all_together_hold(tmp_path: Path) -> None:
    proc = harness("run", "topologies/experiments.yaml", "--runs-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    j = journal(tmp_path)
    assert len(j["faults"]) == 4 and all(f["status"] == "rolled_back" for f in j["faults"])
    assert all(a["status"] == "passed" for a in j["assertions"])
    assert leftovers(j["run_id"]) == []
