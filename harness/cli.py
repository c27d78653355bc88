"""Command line: the one place errors are rendered (a traceback only with --debug)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from harness.errors import EXIT_INCONCLUSIVE, EXIT_INVALID, HarnessError, SpecError

out = Console(emoji=False)  # user text (step, service, file names) is never turned into emoji
err = Console(stderr=True, emoji=False)


_say_console = err


def verbatim(text: str, style: str = "") -> Text:
    """User text as it is: no rich markup (`[/]`, `[red]`), no emoji codes (`:smile:`), and
    control characters (a file name with an escape sequence) shown escaped, never sent."""
    safe = "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)
    return Text(safe, style=style)


def _print(console: Console, *parts: Text | str) -> None:
    line = Text()
    for part in parts:
        line.append(part if isinstance(part, Text) else verbatim(part))
    console.print(line, highlight=False, soft_wrap=True, emoji=False, markup=False)


def _say(msg: str) -> None:
    _print(_say_console, verbatim(msg, "dim"))


def cmd_run(args: argparse.Namespace) -> int:
    from harness.report import console
    from harness.runner import Run

    run = Run(
        args.topology,
        runs_dir=Path(args.runs_dir),
        keep=args.keep,
        say=_say,
        ui=args.ui,
        experiments=args.experiment,
        allow_external_target=args.allow_external_target,
        compare=args.compare,
    )
    _say(f"run {run.run_id}: topology {run.topo.name} ({args.topology})")
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
    global _say_console
    _say_console = progress.console
    with progress:
        try:
            yield
        finally:
            _say_console = err


def cmd_up(args: argparse.Namespace) -> int:
    from harness.runner import Run

    run = Run(args.topology, runs_dir=Path(args.runs_dir), keep=True, say=_say, judged=False)
    result = run.bring_up()
    if result.exit_code:
        console_error(result.error)
        return result.exit_code
    assert run.plan is not None
    out.print(
        f"run [bold]{run.run_id}[/] is up: load URL {run.plan.load_url}, Prometheus {run.plan.prometheus_url}",
        soft_wrap=True,
    )
    out.print(f"inspect: harness status {run.run_id}; remove: harness down {run.run_id}")
    return 0


def console_error(msg: str | None) -> None:
    if msg:
        _print(err, Text("error: ", style="red"), msg)


def cmd_down(args: argparse.Namespace) -> int:
    from harness.runtime.stack import teardown

    containers, networks = teardown(args.run_id)
    if not containers and not networks:
        out.print(f"nothing labelled with run {args.run_id}")
    else:
        out.print(f"run {args.run_id}: removed {containers} containers and {networks} networks")
    return 0


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


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from harness.spec.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


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


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.spec.loader import load_topology

    warnings: list[str] = []
    topo = load_topology(args.topology, warnings=warnings)
    for line in warnings:  # one line each, verbatim; a warning never fails validation
        _print(err, line)
    _print(
        out,
        f"{args.topology}: valid ({len(topo.services)} services, {len(topo.chaos)} faults, "
        f"{len(topo.assertions)} assertions"
        + (f", {len(warnings)} warning{'s' if len(warnings) > 1 else ''}" if warnings else "")
        + ")",
    )
    return 0


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


def cmd_grafana(args: argparse.Namespace) -> int:
    import os

    from harness.grafana import push_dashboard

    url = args.url or os.environ.get("GRAFANA_URL")
    token = args.token or os.environ.get("GRAFANA_TOKEN")
    if not url:
        raise SpecError(["harness grafana push: no Grafana URL (set GRAFANA_URL or pass --url)"])
    try:
        result = push_dashboard(url, token, Path(args.dashboard))
    except Exception as exc:  # noqa: BLE001 - any client/transport error is one line for the user
        from harness.errors import InfrastructureError

        raise InfrastructureError(f"pushing to Grafana at {url} failed: {exc}") from None
    out.print(f"pushed {args.dashboard} to {url}: {result.get('url', result.get('status', 'ok'))}")
    return 0


class _Parser(argparse.ArgumentParser):
    """A wrong command line is invalid input: exit 3, like a bad topology (argparse says 2,
    which here means "could not be judged")."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="harness", description="Load-test and chaos verification for PHP stacks.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="verb", required=True)
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
    r.set_defaults(func=cmd_run)
    v = sub.add_parser("validate", help="check a topology file and exit")
    v.add_argument("topology")
    v.set_defaults(func=cmd_validate)
    u = sub.add_parser("up", help="bring a topology up and leave it running (see status, down)")
    u.add_argument("topology")
    u.add_argument("--runs-dir", default="runs")
    u.set_defaults(func=cmd_up)
    d = sub.add_parser("down", help="remove one run's containers and network")
    d.add_argument("run_id")
    d.set_defaults(func=cmd_down)
    st = sub.add_parser("status", help="containers, their state and the VIP holder, per run")
    st.add_argument("run_id", nargs="?")
    st.set_defaults(func=cmd_status)
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
    sc = sub.add_parser("schema", help="print the JSON Schema of topology files")
    sc.set_defaults(func=cmd_schema)
    gr = sub.add_parser(
        "grafana", help="push the dashboard to Grafana (GRAFANA_URL, GRAFANA_TOKEN)"
    )
    gr.add_argument("action", choices=["push"])
    gr.add_argument("--dashboard", default="dashboards/harness-overview.json")
    gr.add_argument("--url")
    gr.add_argument("--token")
    gr.set_defaults(func=cmd_grafana)
    doc = sub.add_parser(
        "doctor", help="check Docker, disk, images, kernel features; say how to fix each"
    )
    doc.set_defaults(func=cmd_doctor)
    i = sub.add_parser(
        "images", help="build the built-in images (bootstrapping the base image if needed)"
    )
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
            _print(err, line)
        return exc.exit_code
    except HarnessError as exc:
        if args.debug:
            raise
        _print(err, Text("error: ", style="red"), str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INCONCLUSIVE
    except Exception as exc:  # never a bare traceback for users; --debug shows it
        if args.debug:
            raise
        _print(
            err,
            Text("internal error: ", style="red"),
            f"{exc!r} (run again with --debug for the traceback)",
        )
        return EXIT_INCONCLUSIVE


if __name__ == "__main__":
    sys.exit(main())
