"""Command line: the one place errors are rendered (a traceback only with --debug)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from harness.errors import EXIT_INCONCLUSIVE, HarnessError, SpecError

out = Console()
err = Console(stderr=True)


def _say(msg: str) -> None:
    err.print(f"[dim]{msg}[/]")


def cmd_run(args: argparse.Namespace) -> int:
    from harness.report import console
    from harness.report.writers import write_reports
    from harness.runner import Run

    run = Run(args.topology, runs_dir=Path(args.runs_dir), keep=args.keep, say=_say)
    _say(f"run {run.run_id}: topology {run.topo.name} ({args.topology})")
    result = run.execute()
    write_reports(run.journal.data, run.run_dir)
    console.print_summary(out, run.journal.data)
    console.print_verdict(out, result.status, result.exit_code, str(result.run_dir), result.error)
    return result.exit_code


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.spec.loader import load_topology

    topo = load_topology(args.topology)
    out.print(f"{args.topology}: valid ({len(topo.services)} services, {len(topo.chaos)} faults, "
              f"{len(topo.assertions)} assertions)")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from harness.runtime.stack import teardown

    containers, networks = teardown(args.run_id)
    out.print(f"removed {containers} containers and {networks} networks")
    return 0


def cmd_images(args: argparse.Namespace) -> int:
    from harness.runtime import images

    for name in args.names or images.available():
        out.print(f"{name}: {images.build(name, _say)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.rerender import rerender

    try:
        for path in rerender(Path(args.run_dir)):
            out.print(str(path))
    except FileNotFoundError as exc:
        raise SpecError([str(exc)]) from None
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description="Load-test and chaos verification for PHP stacks.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("run", help="bring a topology up, load it, inject faults, judge, tear down")
    r.add_argument("topology")
    r.add_argument("--keep", action="store_true", help="leave the run up for inspection")
    r.add_argument("--runs-dir", default="runs", help="where runs/<run-id>/ reports go")
    r.set_defaults(func=cmd_run)
    v = sub.add_parser("validate", help="check a topology file and exit")
    v.add_argument("topology")
    v.set_defaults(func=cmd_validate)
    g = sub.add_parser("gc", help="remove every container and network carrying the harness's labels")
    g.add_argument("run_id", nargs="?", help="only this run")
    g.set_defaults(func=cmd_gc)
    d = sub.add_parser("down", help="remove one run's containers and network")
    d.add_argument("run_id")
    d.set_defaults(func=cmd_gc)
    i = sub.add_parser("images", help="build the built-in images (bootstrapping the base image if needed)")
    i.add_argument("action", choices=["build"])
    i.add_argument("names", nargs="*")
    i.set_defaults(func=cmd_images)
    rep = sub.add_parser("report", help="re-render junit.xml and report.html from a run's journal")
    rep.add_argument("run_dir")
    rep.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SpecError as exc:
        for line in exc.problems:
            err.print(line, markup=False, highlight=False)
        return exc.exit_code
    except HarnessError as exc:
        if args.debug:
            raise
        err.print(f"[red]error:[/] {exc}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INCONCLUSIVE


if __name__ == "__main__":
    sys.exit(main())
