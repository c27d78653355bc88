"""`harness up`: bring a topology up and leave it running (see `status`, `down`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.output import error, out, say


def add_parser(sub: Any) -> None:
    u = sub.add_parser("up", help="bring a topology up and leave it running (see status, down)")
    u.add_argument("topology")
    u.add_argument("--runs-dir", default="runs")
    u.set_defaults(func=cmd_up)


def cmd_up(args: argparse.Namespace) -> int:
    from harness.errors import EXIT_INVALID
    from harness.runner import Run
    from harness.spec.hostsrt import refuse_up

    refused = refuse_up(args.topology)  # existing machines: nothing to bring up
    if refused:
        error(refused)
        return EXIT_INVALID

    run = Run(args.topology, runs_dir=Path(args.runs_dir), keep=True, say=say, judged=False)
    result = run.bring_up()
    if result.exit_code:
        error(result.error)
        return result.exit_code
    assert run.plan is not None
    out.print(
        f"run [bold]{run.run_id}[/] is up: load URL {run.plan.load_url}, Prometheus {run.plan.prometheus_url}",
        soft_wrap=True,
    )
    out.print(f"inspect: harness status {run.run_id}; remove: harness down {run.run_id}")
    return 0
