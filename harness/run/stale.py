"""At the start of a run, what a dead harness left of the same topology: its faults rolled back
from its journal and its containers and network removed. Only runs whose journal says
`running` and whose harness pid is known dead (harness.journal.stale_runs); a live run,
whoever started it, is never touched."""

from __future__ import annotations

from pathlib import Path

from harness.chaos.recover import recover
from harness.journal import stale_runs
from harness.runtime.stack import teardown


def collect(runs_dir: Path, topology: str) -> list[str]:
    """Clean up each stale run of `topology` under `runs_dir`; one line per thing done (none
    when nothing was stale)."""
    lines: list[str] = []
    for run_dir in stale_runs(runs_dir, topology):
        lines += [f"rolled back: {line}" for line in recover(run_dir)]
        containers, networks = teardown(run_dir.name)
        if containers or networks:
            lines.append(
                f"stale run {run_dir.name} (its harness is gone): removed {containers} "
                f"containers and {networks} networks"
            )
    return lines
