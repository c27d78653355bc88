"""A real Toxiproxy client in another language against the server (issue 14, ask 4).

``node_client.js`` drives the npm package ``toxiproxy-node-client`` through every endpoint
and every toxic with traffic through the proxy; this test asserts what it observed (times,
bytes, how connections ended), not only that calls returned.  The package is installed
once per machine with npm into ~/.cache/harness/npm (or found through
$HARNESS_NODE_MODULES).  Without node/npm the test is skipped, except in CI (CI set), where
that is a failure, as for the promlab tests.  toxiproxy-python's flows are in
tests/unit/test_toxiproxy_client.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGE = "toxiproxy-node-client@4.1.0"
SCRIPT = Path(__file__).with_name("node_client.js")


def _node_modules() -> Path | None:
    given = os.environ.get("HARNESS_NODE_MODULES")
    if given:
        return Path(given)
    prefix = Path.home() / ".cache" / "harness" / "npm"
    modules = prefix / "node_modules"
    if (modules / "toxiproxy-node-client" / "package.json").exists():
        return modules
    npm = shutil.which("npm")
    if npm is None:
        return None
    prefix.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", PACKAGE],
        capture_output=True,
        text=True,
        timeout=180,
    )
    return modules if done.returncode == 0 else None


@pytest.fixture(scope="session")
def node_modules() -> Path:
    modules = _node_modules() if shutil.which("node") else None
    if modules is None:
        if os.environ.get("CI"):
            pytest.fail(f"node and npm ({PACKAGE}) are needed for the real-client test in CI")
        pytest.skip(f"node/npm or {PACKAGE} not available")
    return modules


def test_node_client_drives_every_endpoint_and_toxic(
    node_modules: Path, toxiproxy_url: str, echo: str
) -> None:
    run = subprocess.run(
        ["node", str(SCRIPT), toxiproxy_url, echo],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)

    assert seen["version"].count(".") == 2 and "-" not in seen["version"]
    assert seen["created"]["enabled"] is True and seen["created"]["listen"].startswith("127.0.0.1:")
    assert seen["plain"]["how"] == "complete" and seen["plain"]["ms"] < 250

    assert seen["latency_toxic"]["attributes"] == {"latency": 300, "jitter": 0}
    assert 290 <= seen["latency"]["ms"] < 800
    assert seen["latency_updated_toxic"]["attributes"]["latency"] == 100
    assert 95 <= seen["latency_updated"]["ms"] < 290  # the update applied to new traffic
    assert seen["fetched_toxic"] == seen["latency_updated_toxic"]
    assert seen["after_remove"]["ms"] < 250

    assert seen["bandwidth"]["how"] == "complete" and 400 <= seen["bandwidth"]["ms"] < 2000
    assert seen["slicer"]["how"] == "complete" and len(seen["slicer"]["reads"]) >= 10
    assert (seen["limit_data"]["how"], seen["limit_data"]["bytes"]) == ("eof", 5)
    assert seen["timeout"]["how"] == "eof" and seen["timeout"]["bytes"] == 0
    assert 290 <= seen["timeout"]["ms"] < 1500
    assert seen["reset_peer"]["how"] == "ECONNRESET" and 90 <= seen["reset_peer"]["ms"] < 1500
    assert 290 <= seen["slow_close"]["ms"] < 1500

    assert seen["disabled"]["enabled"] is False
    assert seen["disabled"]["traffic"]["how"] == "ECONNREFUSED"
    assert seen["reenabled"]["traffic"]["how"] == "complete"
    assert "409" in seen["duplicate"]
    assert seen["populated"] == {"pop_a": True, "pop_b": False}
    assert seen["populated_traffic"]["how"] == "complete"
    assert seen["after_reset"] == {
        name: {"enabled": True, "toxics": 0} for name in ("node", "pop_a", "pop_b")
    }
    assert seen["got"] == "node" and seen["remaining"] == []
    assert "404" in seen["missing"]
