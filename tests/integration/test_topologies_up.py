"""Every shipped topology comes up healthy through `harness up`, shows in `harness status`
(with the VIP holder), answers through its load URL, can be inspected with testinfra, and
`harness down` removes it. Two runs of one topology at once do not collide."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from harness.hosts import host
from tests.integration.helpers import harness, leftovers

pytestmark = pytest.mark.docker


def up(topology: str, runs: Path) -> tuple[str, str]:
    proc = harness("up", topology, "--runs-dir", str(runs))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"run (\S+) is up: load URL (\S+),", proc.stdout)
    assert m, proc.stdout
    return m.group(1), m.group(2)


@pytest.mark.parametrize("topology", ["nginx-lb", "nginx-ha", "sticky-sessions"])
def test_topology_comes_up_healthy_and_goes_down(topology: str, tmp_path: Path) -> None:
    run_id, url = up(f"topologies/{topology}.yaml", tmp_path)
    try:
        status = harness("status", run_id)
        assert status.returncode == 0
        assert "running" in status.stdout and "exited" not in status.stdout
        if topology == "nginx-ha":
            vip = url.removeprefix("http://")
            assert vip in status.stdout  # the VIP column names the holder's VIP
        answers = {httpx.get(f"{url}/health", timeout=5).headers["X-Served-By"] for _ in range(12)}
        assert len(answers) >= 2, answers  # the LB spreads over the backends
        backend = "fpm-1" if topology == "nginx-lb" else "web-1"
        h = host(backend, run_id)
        assert h.process.filter(comm="php-fpm8.2")
        if topology == "nginx-lb":
            assert h.socket("tcp://0.0.0.0:9000").is_listening
        else:
            assert h.socket("tcp://0.0.0.0:80").is_listening
    finally:
        down = harness("down", run_id)
    assert down.returncode == 0 and "removed" in down.stdout
    assert leftovers(run_id) == []


def test_two_runs_of_one_topology_at_once_do_not_collide(tmp_path: Path) -> None:
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda i: up("topologies/nginx-lb.yaml", tmp_path / str(i)), range(2)))
    try:
        (a, url_a), (b, url_b) = runs
        assert a != b and url_a != url_b
        for url in (url_a, url_b):
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        journals = [json.loads(next((tmp_path / str(i)).glob("*/journal.json")).read_text()) for i in range(2)]
        subnets = {next(p for p in j["phases"] if p["name"] == "up")["subnet"] for j in journals}
        assert len(subnets) == 2
    finally:
        for run_id, _ in runs:
            harness("down", run_id)
    assert leftovers(a) == [] and leftovers(b) == []
