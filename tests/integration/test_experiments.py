"""Reusable experiments (chaos/*.yaml) referenced from a topology and picked with
`--experiment`: only the picked steps run, and their assertions are judged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import harness, journal, leftovers

pytestmark = pytest.mark.docker


def test_picked_experiments_run_and_hold(tmp_path: Path) -> None:
    proc = harness("run", "topologies/experiments.yaml", "--experiment", "vip-failover",
                   "--experiment", "db-latency", "--runs-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    j = journal(tmp_path)
    assert {f["name"] for f in j["faults"]} == {"LB process dies on the VIP holder", "slow database link"}
    assert {a["name"] for a in j["assertions"]} == {"VIP failed over", "no errors while the database is slow"}
    failover = next(a for a in j["assertions"] if a["kind"] == "failover_time")
    assert 0 < failover["measured"] <= failover["bound"]
    assert all(f["status"] == "rolled_back" for f in j["faults"])
    assert leftovers(j["run_id"]) == []


def test_an_unknown_experiment_is_invalid_input(tmp_path: Path) -> None:
    proc = harness("run", "topologies/experiments.yaml", "--experiment", "nosuch", "--runs-dir", str(tmp_path))
    assert proc.returncode == 3
    assert "no experiment named 'nosuch' (known: web-node-kill, vip-failover, db-latency, redis-partition)" in proc.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
