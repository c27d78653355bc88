"""`harness run`: bring a topology up, load it, inject faults, judge, tear down."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.markup import escape

from harness.cli.output import err, out, say, say_to


def add_parser(sub: Any) -> None:
    r = sub.add_parser("run", help="bring a topology up, load it, inject faults, judge, tear down")
    r.add_argument("topology")
    r.add_argument("--keep", action="store_true", help="leave the run up for inspection")
    r.add_argument("--runs-dir", default="runs", help="where runs/<run-id>/ reports go")
    r.add_argument(
        "--experiment",
        action="append",
        metavar="NAME",
        help="run only this experiment of the topology's experiments: (repeatable)",
    )
    r.add_argument(
        "--allow-external-target",
        metavar="WHY",
        help="allow load.url outside the run's network and loopback, saying why (journaled)",
    )
    r.add_argument(
        "--compare",
        metavar="RUN",
        help="regression gate: a previous run's directory or journal.json (overrides compare:)",
    )
    r.add_argument(
        "--ui", action="store_true", help="Locust's web UI on http://127.0.0.1:8089 during the run"
    )
    r.add_argument(
        "--i-know",
        action="store_true",
        help="runtime: hosts: allow destructive faults on hosts not marked lab: true",
    )
    r.add_argument(
        "--ssh-config", help="runtime: hosts: an ssh config file (or HARNESS_SSH_CONFIG)"
    )
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.report import console
    from harness.run.hosts import HostsRun, runtime_of
    from harness.runner import Run

    hosts = runtime_of(args.topology) == "hosts"
    extra = {"i_know": args.i_know, "ssh_config": args.ssh_config} if hosts else {}
    run = (HostsRun if hosts else Run)(
        args.topology,
        runs_dir=Path(args.runs_dir),
        keep=args.keep,
        say=say,
        ui=args.ui,
        experiments=args.experiment,
        allow_external_target=args.allow_external_target,
        compare=args.compare,
        **extra,
    )
    say(f"run {run.run_id}: topology {run.topo.name} ({args.topology})")
    with _load_progress(run):
        result = run.execute()
    console.print_summary(out, run.journal.data)
    console.print_verdict(out, result.status, result.exit_code, str(result.run_dir), result.error)
    return result.exit_code


@contextmanager
def _load_progress(run: Any) -> Iterator[None]:
    """A progress bar over the load phase (with the faults active right now); the harness's
    other messages print above it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]load"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}s"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[faults]}"),
        console=err,
        transient=True,
    )
    task: list[Any] = []

    def tick(elapsed: float, total: float, faults: str) -> None:
        if not task:
            task.append(progress.add_task("load", total=total, faults=""))
        label = f"[red]fault: {escape(faults)}[/]" if faults else ""
        progress.update(task[0], completed=min(elapsed, total), faults=label)

    run.on_tick = tick
    say_to(progress.console)
    with progress:
        try:
            yield
        finally:
            say_to(None)
