"""`harness up` and the pytest plugin's `harness_stack` on a `runtime: hosts` topology: its
machines are up already and `up` starts containers, so both refuse on one line (file, line,
field, what to use instead) before anything is built; docker topologies are not affected."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.errors import EXIT_INVALID
from harness.spec.hostsrt import refuse_up

REPO = Path(__file__).resolve().parents[3]
NO_DOCKER = "unix:///nonexistent/docker.sock"  # were it not refused, nothing could start
HOSTS = """\
version: 1
name: hosts
runtime: hosts
allow: [10.0.0.0/24]
services:
  lb: {kind: haproxy, backends: web, hosts: [ssh://ops@10.0.0.11]}
  web: {kind: web, sessions: files, hosts: [ssh://ops@10.0.0.21]}
  db: {kind: mariadb, hosts: [ssh://ops@10.0.0.31]}
"""


def test_harness_up_refuses_a_hosts_topology_before_building(tmp_path: Path) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(HOSTS)
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "up", str(path), "--runs-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "300", "PATH": "/usr/bin:/bin", "DOCKER_HOST": NO_DOCKER},
    )
    assert proc.returncode == EXIT_INVALID, proc.stdout + proc.stderr
    [line] = [x for x in proc.stderr.splitlines() if x.strip()]
    assert f"{path}:3: runtime: hosts names machines that are up already" in line
    assert f"harness hosts check {path}" in line and f"harness run {path}" in line
    assert not any(tmp_path.glob("*/journal.json"))  # no run was started


def test_docker_topologies_and_unreadable_files_are_not_refused(tmp_path: Path) -> None:
    assert refuse_up(REPO / "topologies/ha.yaml") is None
    assert refuse_up(tmp_path / "missing.yaml") is None  # validation says what is wrong
    (tmp_path / "list.yaml").write_text("- runtime: hosts\n")
    assert refuse_up(tmp_path / "list.yaml") is None


def test_the_plugin_refuses_a_hosts_topology(
    harness_stack: Callable[[str], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)
    path = tmp_path / "h.yaml"
    path.write_text(HOSTS)
    with pytest.raises(RuntimeError, match=r"h.yaml:3: runtime: hosts names machines"):
        harness_stack(str(path))
