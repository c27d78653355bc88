"""`harness doctor`: check Docker, disk, images, kernel features; say how to fix each."""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.output import out


def add_parser(sub: Any) -> None:
    doc = sub.add_parser(
        "doctor", help="check Docker, disk, images, kernel features; say how to fix each"
    )
    doc.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from harness.doctor import checks

    bad = 0
    for c in checks():
        mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
        out.print(
            f"{mark} {c.name}: {c.detail}" + ("" if c.ok or not c.fix else f"  -> fix: {c.fix}"),
            highlight=False,
        )
        bad += not c.ok
    return 0 if not bad else 2
