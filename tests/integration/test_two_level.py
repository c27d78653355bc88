"""Issue 13, ask 5, against real containers: the two-level LB. An edge HAProxy balances two
gateways (HAProxy driven through its runtime API), whose servers are the web nodes registered
in etcd under a 3 s lease. `topologies/two-level.yaml` freezes web-2's heartbeats for 8 s under
load (20 s, 10 users): the registry lets the lease expire, both gateways drop web-2 within the
lease TTL plus etcd's sweep and the sync, nobody sees an error or loses a session, and web-2
registers again and comes back when the heartbeats resume. One run, one stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import harness, journal, leftovers

pytestmark = pytest.mark.docker

TTL = 3.0
# The fault is journaled, then the SIGSTOP goes in by `docker exec` (0.1-0.3 s, more on a busy
# machine): a heartbeat can still renew the lease in between, so the lease may expire up to that
# lag after TTL. Then etcd finds it expired within its 500 ms sweep.
FREEZE_LAG, SWEEP = 0.5, 0.5


def test_frozen_heartbeats_expire_the_lease_and_both_gateways_drop_the_node(
    tmp_path: Path,
) -> None:
    proc = harness("run", "topologies/two-level.yaml", "--runs-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    j = journal(tmp_path)
    by_kind = {a["kind"]: a for a in j["assertions"]}
    assert {a["status"] for a in j["assertions"]} == {"passed"}, by_kind

    [fault] = j["faults"]
    assert (fault["kind"], fault["target"], fault["status"]) == (
        "heartbeat_freeze",
        "heartbeats@web-2",
        "rolled_back",
    )

    ej = by_kind["ejection_time"]
    assert ej["bound"] == pytest.approx(TTL + 1.0)  # max: auto from the lease TTL
    assert "lease_ttl 3s" in ej["message"] + str(ej["extra"])
    # both gateways dropped web-2 (one figure per gateway), none before the lease could expire
    series = ej["extra"]["series"]
    assert set(series) == {"gateway-1/web-2", "gateway-2/web-2"}
    registry_side, after = ej["extra"]["registry_side"], ej["extra"]["after_registry"]
    # the lease expires TTL after its last renewal, which came at most a heartbeat (1 s) before
    # the freeze and at most FREEZE_LAG after the journaled start, then the sweep
    assert TTL - 1.0 - 0.1 <= registry_side <= TTL + FREEZE_LAG + SWEEP + 0.1, registry_side
    # the gateways act on the registry's DELETE, not on their own health checks (the frozen
    # node still answers those): within the sync allowance after the deregistration
    assert 0 <= after <= 0.5, after
    for figure in series.values():
        assert registry_side <= figure <= registry_side + 0.5

    # the registry's own account, in order: web-2 deregistered, then registered again after the
    # rollback, and every gateway took it back
    events = [
        e for e in j["watch"]["lb_events"] if e[3] == "web-2" and e[0] >= j["load_started_at"]
    ]
    reg = [(e[4]) for e in events if e[2] == "registry"]
    assert reg == ["DELETE", "PUT"], events
    put_at = next(e[0] for e in events if e[2] == "registry" and e[4] == "PUT")
    assert put_at >= fault["rolled_back_at"] - 0.05
    ups = {e[1] for e in events if e[2] == "backend" and e[4] == "UP" and e[0] >= put_at}
    assert ups == {"gateway-1", "gateway-2"}

    assert by_kind["error_budget"]["measured"] == 0
    assert by_kind["session_continuity"]["measured"] == 0
    assert leftovers(j["run_id"]) == []


def test_a_lease_too_long_for_the_bound_fails_ejection_time_and_nothing_else(
    tmp_path: Path,
) -> None:
    """examples/two-level-long-lease.yaml: a 10 s lease (3 s heartbeats) against a 4 s bound.
    The frozen node stays registered until its lease runs out, so the gateways drop it 7-10 s
    after the freeze: ejection_time fails on that figure, while the node, which still serves,
    costs no request and no session."""
    proc = harness(
        "run", "topologies/examples/two-level-long-lease.yaml", "--runs-dir", str(tmp_path)
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    j = journal(tmp_path)
    by_kind = {a["kind"]: a for a in j["assertions"]}
    assert {k: a["status"] for k, a in by_kind.items()} == {
        "ejection_time": "failed",
        "error_budget": "passed",
        "session_continuity": "passed",
    }
    ej = by_kind["ejection_time"]
    assert ej["bound"] == 4.0
    # failed on the lease: its last renewal came at most a heartbeat (3 s) before the freeze
    # (and at most FREEZE_LAG after the journaled start); then the sweep and the 0.5 s sync
    registry_side = ej["extra"]["registry_side"]
    assert 10.0 - 3.0 - 0.1 <= registry_side <= 10.0 + FREEZE_LAG + SWEEP + 0.1, ej
    assert registry_side <= float(ej["measured"]) <= registry_side + 0.5, ej
    assert set(ej["extra"]["series"]) == {"gateway-1/web-2", "gateway-2/web-2"}
    assert leftovers(j["run_id"]) == []
