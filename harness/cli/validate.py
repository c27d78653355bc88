"""`harness validate`: check a topology file and exit (warnings print, never fail)."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.output import err, line, out


def add_parser(sub: Any) -> None:
    v = sub.add_parser("validate", help="check a topology file and exit")
    v.add_argument("topology")
    v.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.plan.check import load_topology

    warnings: list[str] = []
    topo = load_topology(args.topology, warnings=warnings)
    for warning in warnings:  # one line each, verbatim; a warning never fails validation
        line(err, warning)
    line(
        out,
        f"{args.topology}: valid ({len(topo.services)} services, {len(topo.chaos)} faults, "
        f"{len(topo.assertions)} assertions"
        + (f", {len(warnings)} warning{'s' if len(warnings) > 1 else ''}" if warnings else "")
        + ")",
    )
    return 0
