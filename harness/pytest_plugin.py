"""pytest fixtures for users who drive the harness from their own tests:

def test_fpm_runs(harness_stack, harness_host):
    stack = harness_stack("topologies/ha.yaml")          # up once per module, down after
    h = harness_host("web-1", stack.run_id)
    assert h.process.filter(comm="php-fpm8.2")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def harness_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Any]]:
    from harness.runner import Run
    from harness.runtime.stack import teardown
    from harness.spec.hostsrt import refuse_up

    started: list[str] = []

    def up(topology: str) -> Any:
        refused = refuse_up(topology)
        if refused:
            raise RuntimeError(refused)
        run = Run(
            topology,
            runs_dir=Path(tmp_path_factory.mktemp("harness-runs")),
            keep=True,
            say=lambda _: None,
            judged=False,
        )
        started.append(run.run_id)
        result = run.bring_up()
        if result.exit_code:
            raise RuntimeError(f"harness up {topology} failed: {result.error}")
        return run

    yield up
    for run_id in started:
        teardown(run_id)


@pytest.fixture
def harness_host() -> Callable[..., Any]:
    from harness.hosts import host

    return host
