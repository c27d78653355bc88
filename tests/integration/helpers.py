"""Helpers for the Docker tests: run the CLI as users do, and check nothing was left behind."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import pytest

from harness.plan.build import make_plan
from harness.plan.check import load_topology
from harness.plan.model import RunPlan
from harness.runner import build_images
from harness.runtime.stack import Stack, create_network, teardown

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


@contextmanager
def running_stack(
    tmp_path_factory: pytest.TempPathFactory, name: str, topology: str
) -> Iterator[tuple[RunPlan, Stack]]:
    """A stack of `topology` (YAML text) up without a run around it, for tests that drive faults
    and watchers themselves; removed afterwards, and nothing labelled with its run id may remain."""
    path = tmp_path_factory.mktemp(name) / f"{name}.yaml"
    path.write_text(topology)
    topo = load_topology(path, require_assertions=False)  # a stack for tests, judged by none
    run_id = f"it-{name}-{secrets.token_hex(3)}"
    tags = build_images(topo, lambda msg: None)
    try:
        network, subnet = create_network(run_id, topo.name)
        plan = make_plan(topo, run_id, subnet, [])
        stack = Stack(plan, network, lambda msg: None)
        stack.image_tags = tags
        stack.up()
        yield plan, stack
    finally:
        teardown(run_id)
        assert leftovers(run_id) == [], f"left behind: {leftovers(run_id)}"


def wait_journal(
    runs: Path, ready: Callable[[dict[str, Any]], bool], what: str, timeout: float = 240
) -> dict[str, Any]:
    """Poll the journals under `runs` until one satisfies `ready`; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in runs.glob("*/journal.json"):
            try:
                j = json.loads(path.read_text())
            except ValueError:  # caught mid-write
                continue
            if ready(j):
                return dict(j)
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout:g}s")


def eventually(check: Callable[[], Any], want: Any, timeout: float = 10.0) -> None:
    """Poll `check` every 0.2 s until it returns `want`; fail with the last value it gave."""
    deadline, got = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if (got := check()) == want:
            return
        time.sleep(0.2)
    pytest.fail(f"wanted {want!r} within {timeout:g}s, last saw {got!r}")
