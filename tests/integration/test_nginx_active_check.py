"""The nginx-lb's active health checks (images/lb/nginx-upstreams.sh) against real Nginx and
web nodes: with passive checks off (`max_fails: 0`, which examples/nginx-never-ejects.yaml shows
never ejects), a stopped web node is marked `down` by the checks within the bound its `check:`
gives (`ejection_time: max: auto`), logged so the watchers see it, and taken back after `rise`
good checks once it runs again. One harness run, 16 s of load."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import harness, journal

pytestmark = pytest.mark.docker


def test_a_stopped_node_is_ejected_by_the_active_checks_within_the_config_bound(
    tmp_path: Path,
) -> None:
    proc = harness("run", "topologies/nginx-active-check.yaml", "--runs-dir", str(tmp_path))
    j = journal(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    by_kind = {a["kind"]: a for a in j["assertions"]}
    ejection = by_kind["ejection_time"]
    assert ejection["status"] == "passed"
    assert ejection["extra"]["bound_from_config"].startswith("active: fall 2")
    # max: auto = fall 2 x (inter 0.5 + timeout 0.5) + inter 0.5 (phase) + reload 1.0
    assert ejection["bound"] == pytest.approx(3.5)
    # not before two failed checks, which are an `inter` apart
    assert 0.5 <= float(ejection["measured"]) <= 3.5
    events = [
        (ts, server, state)
        for ts, _, what, server, state in j["watch"]["lb_events"]
        if what == "backend"
    ]
    assert [(s, st) for _, s, st in events] == [("web-1", "DOWN"), ("web-1", "UP")], events
    [fault] = j["faults"]
    down_at, up_at = events[0][0], events[1][0]
    assert down_at > fault["injected_at"]
    assert up_at > fault["rolled_back_at"], "back only after it runs again and passes rise checks"
    assert by_kind["recovery_time"]["status"] == "passed"
    assert by_kind["session_continuity"]["status"] == "passed"
