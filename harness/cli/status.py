"""`harness status`: containers, their state and the VIP holder, per run."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.output import out


def add_parser(sub: Any) -> None:
    st = sub.add_parser("status", help="containers, their state and the VIP holder, per run")
    st.add_argument("run_id", nargs="?")
    st.set_defaults(func=cmd_status)


def cmd_status(args: argparse.Namespace) -> int:
    from rich.table import Table

    from harness.runtime.inventory import rows
    from harness.runtime.primary import roles

    found = rows(args.run_id)
    if not found:
        out.print("no harness containers" + (f" for run {args.run_id}" if args.run_id else ""))
        return 0
    table = Table(header_style="bold")
    role = roles(args.run_id)  # who takes writes in each data service (issue 12)
    for col in ("run", "topology", "container", "service", "status", "ip", "VIP", "role"):
        table.add_column(col)
    for r in found:
        style = "green" if r.status == "running" else "yellow"
        table.add_row(
            r.run_id,
            r.topology,
            r.instance,
            r.service,
            f"[{style}]{r.status}[/]",
            r.ip,
            f"[bold]{r.holds_vip}[/]" if r.holds_vip else "",
            role.get((r.run_id, r.instance), "").replace("primary", "[bold]primary[/]"),
        )
    out.print(table)
    return 0
