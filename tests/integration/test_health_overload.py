"""Issue 13, asks 3 and 4, against real containers: a deep health check ejects every node when the
database gets slow (error_budget fails and the report's backend lane reads "all backends DOWN")
while a liveness check on its own PHP-FPM pool keeps them in; past capacity, HAProxy's maxconn
and timeout queue, or Nginx's limit_conn, shed fast where no limit stalls into timeouts
(`overload`); losing two nodes of three costs the budget the topology expects, shed, not
stalled. Six short runs (12-20 s of load each)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import harness, journal, leftovers

pytestmark = pytest.mark.docker


def run(topology: str, runs: Path) -> tuple[int, dict[str, Any]]:
    proc = harness("run", topology, "--runs-dir", str(runs))
    j = journal(runs)
    assert leftovers(j["run_id"]) == []
    assert all(f["status"] == "rolled_back" for f in j["faults"])
    return proc.returncode, j


def assertion(j: dict[str, Any], name: str) -> dict[str, Any]:
    [a] = [a for a in j["assertions"] if a["name"] == name]
    return a


def measured(a: dict[str, Any]) -> float:
    return math.inf if a["measured"] == "+Inf" else float(a["measured"])


def test_a_deep_check_ejects_every_node_on_a_slow_database_and_liveness_keeps_them(
    tmp_path: Path,
) -> None:
    code, bad = run("topologies/examples/deep-health-check.yaml", tmp_path / "deep")
    budget = assertion(bad, "a slow database costs no requests")
    assert code == 1 and budget["status"] == "failed", budget["message"]
    assert measured(budget) > 0.5  # most requests in the window: the LB's own 503
    report = next((tmp_path / "deep").glob("*/report.html")).read_text()
    assert 'data-state="all backends DOWN"' in report

    code, good = run("topologies/health-liveness.yaml", tmp_path / "live")
    assert code == 0, [(a["name"], a["status"], a["message"]) for a in good["assertions"]]
    assert measured(assertion(good, "a slow database costs no requests")) == 0
    report = next((tmp_path / "live").glob("*/report.html")).read_text()
    assert 'data-state="all backends DOWN"' not in report and 'data-state="all 2 UP"' in report


def test_past_capacity_limits_shed_fast_and_no_limits_stall_into_timeouts(
    tmp_path: Path,
) -> None:
    code, good = run("topologies/overload-shed.yaml", tmp_path / "shed")
    shed = assertion(good, "shed, don't stall")
    assert code == 0, shed["message"]
    extra = shed["extra"]
    assert extra["rejected"] > extra["requests"] / 3  # it was overloaded, and it shed
    assert extra["rejected_quantile"] < 0.25 and extra["stalled_ratio"] == 0
    assert measured(shed) < 0.5

    code, nginx = run("topologies/overload-nginx.yaml", tmp_path / "nginx")  # limit_conn
    limited = assertion(nginx, "shed, don't stall")
    assert code == 0, limited["message"]
    assert limited["extra"]["rejected"] > limited["extra"]["requests"] / 3
    assert limited["extra"]["rejected_quantile"] < 0.05  # a 429 straight from Nginx

    code, bad = run("topologies/examples/overload-no-limits.yaml", tmp_path / "stall")
    stall = assertion(bad, "shed, don't stall")
    assert code == 1 and stall["status"] == "failed" and measured(stall) == math.inf
    assert stall["extra"]["rejected"] == 0 and stall["extra"]["stalled_ratio"] > 0.5


def test_two_of_three_nodes_lost_costs_the_expected_budget_shed_not_stalled(
    tmp_path: Path,
) -> None:
    code, j = run("topologies/overload-two-of-three.yaml", tmp_path)
    assert code == 0, [(a["name"], a["status"], a["message"]) for a in j["assertions"]]
    lost = measured(assertion(j, "one node left sheds about a third"))
    # 1 - 40/60 of the requests while one node serves, plus the few on the killed nodes
    assert 0.15 < lost <= 0.45
    assert measured(assertion(j, "three nodes serve everything")) <= 0.005
