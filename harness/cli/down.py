"""`harness down`: remove one run's containers and network."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.output import out


def add_parser(sub: Any) -> None:
    d = sub.add_parser("down", help="remove one run's containers and network")
    d.add_argument("run_id")
    d.set_defaults(func=cmd_down)


def cmd_down(args: argparse.Namespace) -> int:
    from harness.runtime.stack import teardown

    containers, networks = teardown(args.run_id)
    if not containers and not networks:
        out.print(f"nothing labelled with run {args.run_id}")
    else:
        out.print(f"run {args.run_id}: removed {containers} containers and {networks} networks")
    return 0
