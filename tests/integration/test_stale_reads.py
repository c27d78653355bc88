"""Issue 12, the read/write split against real containers: an asynchronously replicated MariaDB
whose replication channel carries 400 ms of delay (Toxiproxy), and a read-your-writes load (place
an order, read it back at once). With the app reading from the replica (`db_reads: replicas`)
reads miss the user's own acknowledged write and `stale_reads` fails on the measured ratio;
reading from the primary (`db_reads: primary`, the control) every read-back finds it. Two runs,
one stack each, 15 s of load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import harness, journal, leftovers

pytestmark = pytest.mark.docker


def stale_events(runs_dir: Path) -> list[dict]:
    [run_dir] = sorted(runs_dir.iterdir())
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == "read_stale"]


def test_reads_from_a_lagging_replica_are_stale_and_fail_stale_reads(tmp_path: Path) -> None:
    proc = harness("run", "topologies/examples/stale-reads-split.yaml", "--runs-dir", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    j = journal(tmp_path)
    by_kind = {a["kind"]: a for a in j["assertions"]}
    stale = by_kind["stale_reads"]
    assert stale["status"] == "failed" and stale["bound"] == 0
    assert stale["extra"]["reads_checked"] > 100
    assert stale["measured"] == pytest.approx(
        stale["extra"]["reads_stale"] / stale["extra"]["reads_checked"]
    )
    assert stale["measured"] > 0.2  # 400 ms behind: most read-backs come too early
    events = stale_events(tmp_path)
    assert events and {e["read_from"] for e in events} == {"replica"}
    assert by_kind["error_budget"]["status"] == "passed"  # a stale read is not a failed request
    assert leftovers(j["run_id"]) == []


def test_reads_from_the_primary_see_every_own_write(tmp_path: Path) -> None:
    proc = harness("run", "topologies/db-reads-primary.yaml", "--runs-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    j = journal(tmp_path)
    stale = next(a for a in j["assertions"] if a["kind"] == "stale_reads")
    assert (stale["status"], stale["measured"]) == ("passed", 0.0)
    assert stale["extra"]["reads_checked"] > 100 and stale_events(tmp_path) == []
    assert leftovers(j["run_id"]) == []
