"""Shared test setup. Tests marked `docker` need a Docker engine: they are skipped only when
none is reachable AND not in CI (CI=true): in CI a missing engine is a failure, never a skip.
Run the fast tests alone with `pytest -m "not docker"`."""

from __future__ import annotations

import os
import subprocess

import pytest


def _docker_ok() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(item.get_closest_marker("docker") for item in items):
        return
    if _docker_ok() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="no Docker engine (run ./install.sh); never skipped in CI")
    for item in items:
        if item.get_closest_marker("docker"):
            item.add_marker(skip)
