"""A harness that cannot fail is worthless: each known-bad topology must fail, on the assertion
its defect breaks, with exit code 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import harness, journal, leftovers

pytestmark = pytest.mark.docker


@pytest.mark.parametrize(("topology", "breaks"), [
    ("topologies/examples/slow-health-check.yaml", "ejection_time"),
    ("topologies/examples/no-track-script.yaml", "failover_time"),
    ("topologies/examples/db-timeout.yaml", "error_budget"),
])
def test_known_bad_topology_fails_on_the_right_assertion(topology: str, breaks: str, tmp_path: Path) -> None:
    proc = harness("run", topology, "--runs-dir", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    j = journal(tmp_path)
    failed = {a["kind"] for a in j["assertions"] if a["status"] == "failed"}
    assert breaks in failed
    assert all(f["status"] == "rolled_back" for f in j["faults"])
    assert leftovers(j["run_id"]) == []
