"""Load profiles on real containers: a staged LoadTestShape driven through Locust's own
distributed mode (master + 2 workers), checked from the metrics in Prometheus."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import harness, journal, leftovers

pytestmark = pytest.mark.docker


def test_stages_and_both_workers_happen(tmp_path: Path) -> None:
    proc = harness("run", "tests/integration/topologies/stages-workers.yaml", "--runs-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    j = journal(tmp_path)
    by_process = j["summary"]["requests_by_process"]
    # requests come from the workers only, and from both of them
    assert by_process.get("locust-worker-1", 0) > 50 and by_process.get("locust-worker-2", 0) > 50
    assert by_process.get("locust", 0) == 0
    # the user count followed the stages: 4, then 12, then 2
    t0 = j["load_started_at"]
    users = [(t - t0, v) for t, v in j["series"]["users"]]
    def at(lo: float, hi: float) -> set[float]:
        return {v for t, v in users if lo <= t <= hi}
    assert at(4, 7) == {4}
    assert at(12, 15) == {12}
    assert at(19, 21) == {2}
    assert j["summary"]["writes_acked"] > 0 and j["summary"]["sessions_started"] > 0
    assert leftovers(j["run_id"]) == []
