"""Overrides users rely on, on real containers: their own PHP app, their own haproxy.cfg as a
Jinja2 template, env, CPU/memory limits, and a custom image with its own health check."""

from __future__ import annotations

import re
from pathlib import Path

import docker
import httpx
import pytest

from tests.integration.helpers import harness, leftovers

pytestmark = pytest.mark.docker


def test_user_app_config_env_resources_and_custom_service(tmp_path: Path) -> None:
    proc = harness("up", "tests/integration/topologies/overrides/overrides.yaml", "--runs-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id, url = re.search(r"run (\S+) is up: load URL (\S+),", proc.stdout).groups()  # type: ignore[union-attr]
    try:
        answers = [httpx.get(f"{url}/anything", timeout=5) for _ in range(6)]
        assert all(r.status_code == 200 and r.text.startswith("custom app on web-") for r in answers)
        assert all(r.headers.get("X-User-Config") == "yes" for r in answers)  # the user's haproxy.cfg
        assert {r.headers["X-Served-By"] for r in answers} == {"web-1", "web-2"}
        client = docker.from_env()
        [web1] = client.containers.list(filters={"label": [f"io.harness.run={run_id}", "io.harness.instance=web-1"]})
        host = web1.attrs["HostConfig"]
        assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 256 * 2**20
        assert "APP_GREETING=hello" in web1.attrs["Config"]["Env"]
        [side] = client.containers.list(filters={"label": [f"io.harness.run={run_id}", "io.harness.service=sidecar"]})
        assert side.status == "running" and side.attrs["HostConfig"]["PortBindings"] in (None, {})
    finally:
        harness("down", run_id)
    assert leftovers(run_id) == []
