"""The whole chain on real containers: `harness run` brings up the HA topology, drives Locust
through the VIP, kills a web node, and judges with Prometheus. And it can fail: the same stack
with file sessions must fail session_continuity. After every run nothing labelled remains."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.integration.helpers import harness, journal, leftovers

pytestmark = pytest.mark.docker


def test_ha_topology_holds_while_a_web_node_is_killed(tmp_path: Path) -> None:
    proc = harness("run", "topologies/ha.yaml", "--runs-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    j = journal(tmp_path)
    assert j["status"] == "passed"
    kill, failover, slow_db = j["faults"]
    assert kill["kind"] == "kill" and kill["target"] == "web-1"
    assert kill["injected_at"] - j["load_started_at"] == pytest.approx(8, abs=1.0)
    assert failover["kind"] == "vip_failover" and failover["before"]["vip_holders"] == {"lb": "lb-1"}
    assert slow_db["kind"] == "latency" and slow_db["rolled_back_at"] - slow_db["injected_at"] == pytest.approx(6, abs=1)
    assert all(f["status"] == "rolled_back" for f in j["faults"])
    fault = kill
    results = {a["name"]: a for a in j["assertions"]}
    assert all(a["status"] == "passed" for a in results.values()), results
    assert 0 < results["ejection_time"]["measured"] <= results["ejection_time"]["bound"]
    assert results["ejection_time"]["extra"]["client_side"] is not None
    failover = results["failover_time"]
    assert 0 < failover["measured"] <= failover["bound"]
    # every client served again is no earlier than the first lucky success, and Keepalived's own
    # transition (its new holder's MASTER line, not the old holder's) comes after the fault
    assert failover["extra"]["first_success"] <= failover["measured"] + 0.001
    assert 0 < failover["extra"]["keepalived_side"] <= failover["bound"]
    # every moment is budgeted: calm, plus one error budget per fault window
    budgets = {a["during"] for a in j["assertions"] if a["kind"] == "error_budget"}
    assert budgets == {"calm"} | {f"fault:{f['name']}" for f in j["faults"]}
    # an instantaneous fault's window ends at its own effect, after the ejection it caused
    window = results["a killed web node costs no requests"]["extra"]["window"]
    assert window[0] == pytest.approx(kill["injected_at"], abs=0.01)
    assert window[1] >= kill["injected_at"] + results["ejection_time"]["measured"]
    assert window[1] < failover["extra"]["window"][0]
    # the VIP moved from lb-1 to lb-2 and the watchers saw it
    holders = [h for _, h in j["series"]["vip_holder"] if h]
    assert holders[0] == "lb-1" and "lb-2" in holders
    assert any(m["kind"] == "failover" for m in j["markers"])
    s = j["summary"]
    assert s["requests"] > 1000 and s["sessions_lost"] == 0 and s["sessions_started"] >= 20
    assert s["error_ratio"] is not None and "error ratio" in proc.stdout
    assert s["writes_acked"] > 100
    # web-1 served traffic before the kill and none after it was ejected
    backends = j["series"]["backend_rps"]
    assert {"web-1", "web-2", "web-3"} <= set(backends)
    late = [v for t, v in backends["web-1"] if t > fault["injected_at"] + 5]
    assert late and max(late) == 0
    assert "sessions lost" in proc.stdout and "a killed web node costs no requests" in proc.stdout
    assert "HELD" in proc.stdout
    run_dir = next(tmp_path.iterdir())
    suite = ET.parse(run_dir / "junit.xml").getroot()
    assert {tc.get("name") for tc in suite.iter("testcase")} == set(results)
    assert (run_dir / "report.html").stat().st_size > 5000
    assert leftovers(j["run_id"]) == []


def test_file_sessions_fail_session_continuity(tmp_path: Path) -> None:
    proc = harness("run", "topologies/ha-file-sessions.yaml", "--runs-dir", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    j = journal(tmp_path)
    by_name = {a["name"]: a for a in j["assertions"]}
    assert by_name["session_continuity"]["status"] == "failed"
    assert by_name["session_continuity"]["measured"] > 0
    assert "harness_sessions_lost_total" in by_name["session_continuity"]["promql"]
    assert leftovers(j["run_id"]) == []
