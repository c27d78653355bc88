"""Helpers for the Docker tests: run the CLI as users do, and check nothing was left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[2]


def harness(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], cwd=REPO, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def leftovers(run_id: str | None = None) -> list[str]:
    client = docker.from_env()
    label = f"io.harness.run={run_id}" if run_id else "io.harness.run"
    names = [c.name for c in client.containers.list(all=True, filters={"label": label})]
    names += [n.name for n in client.networks.list(filters={"label": label})]
    return names


def journal(runs_dir: Path) -> dict:
    [run] = sorted(runs_dir.iterdir())
    return json.loads((run / "journal.json").read_text())


def locust_pids(run_id: str) -> list[int]:
    """Locust processes the harness started for this run (found by their HARNESS_RUN_ID)."""
    pids = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"HARNESS_RUN_ID={run_id}\0".encode() in env.read_bytes():
                pids.append(int(env.parent.name))
        except OSError:
            continue
    return pids
