"""`harness report`: re-render junit.xml and report.html from a run's journal."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.output import out
from harness.errors import SpecError


def add_parser(sub: Any) -> None:
    rep = sub.add_parser("report", help="re-render junit.xml and report.html from a run's journal")
    rep.add_argument("run_dir")
    rep.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.rerender import rerender

    try:
        for path in rerender(Path(args.run_dir)):
            out.print(str(path))
    except FileNotFoundError as exc:
        raise SpecError([str(exc)]) from None
    return 0
