"""`harness gc`: roll back faults a killed harness left, then remove everything labelled."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.output import out


def add_parser(sub: Any) -> None:
    g = sub.add_parser(
        "gc", help="roll back faults a killed harness left, then remove everything labelled"
    )
    g.add_argument("run_id", nargs="?", help="only this run")
    g.add_argument(
        "--runs-dir", default="runs", help="where to find the journals of interrupted runs"
    )
    g.add_argument(
        "--rollback-only", action="store_true", help="undo leftover faults, keep the containers"
    )
    g.add_argument(
        "--restart-stopped", action="store_true", help="start containers a fault stopped"
    )
    g.set_defaults(func=cmd_gc)


def cmd_gc(args: argparse.Namespace) -> int:
    from harness.chaos.recover import recover, recover_all
    from harness.runtime.stack import teardown

    runs_dir = Path(args.runs_dir)
    lines = (
        recover(runs_dir / args.run_id, restart_stopped=args.restart_stopped)
        if args.run_id and (runs_dir / args.run_id / "journal.json").exists()
        else recover_all(runs_dir, restart_stopped=args.restart_stopped)
        if not args.run_id
        else []
    )
    for line in lines:
        out.print(f"rolled back: {line}")
    if args.rollback_only:
        return 0
    containers, networks = teardown(args.run_id)
    out.print(f"removed {containers} containers and {networks} networks")
    return 0
