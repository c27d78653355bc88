"""Wall time of a full `harness run TOPOLOGY` (default topologies/ha.yaml), with its phases.

Runs `harness run TOPOLOGY --runs-dir <tmp>` as a subprocess --repeat times (images are
expected to be built already: `harness images build`), timing each from process start to exit,
and reads the phases (name, started_at, ended_at) from the run's journal.json. Whatever
happens, the run's containers are removed: the harness tears its run down itself, and this
script calls `harness.runtime.stack.teardown(run_id)` afterwards all the same (Ctrl-C is
forwarded to the harness as SIGTERM first, so it can roll back and clean up).

Goal: a run of topologies/ha.yaml completes in < 180 s of wall time.

Exit code: 0 measured and goal met, 1 measured and goal missed (or the run did not reach a
verdict), 2 could not measure (or interrupted). Results: a table, and
bench/results/run-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    RESULTS,
    ROOT,
    BenchError,
    Proc,
    busy_note,
    console,
    fmt,
    install_sigterm,
    machine,
    median,
    say,
    write_result,
)
from docker.errors import DockerException
from rich.table import Table

from harness.errors import HarnessError
from harness.runtime.signals import shielded
from harness.runtime.stack import teardown
from harness.spec.loader import load_topology

GOAL_S = 180.0
TOPOLOGY = ROOT / "topologies" / "ha.yaml"
VERDICTS = {0: "passed", 1: "assertion failed", 2: "inconclusive / error", 3: "invalid input"}


def harness_cmd() -> list[str]:
    """The `harness` console script of this interpreter's environment (else the module)."""
    exe = Path(sys.executable).with_name("harness")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("harness")
    return (
        [found]
        if found
        else [sys.executable, "-c", "from harness.cli import main; raise SystemExit(main())"]
    )


def journal_of(runs_dir: Path) -> dict[str, Any] | None:
    paths = sorted(runs_dir.glob("*/journal.json"))
    if not paths:
        return None
    try:
        data: dict[str, Any] = json.loads(paths[-1].read_text())
        return data
    except (OSError, ValueError):  # being rewritten this very instant
        return None


def current_phase(journal: dict[str, Any] | None) -> str:
    phases = (journal or {}).get("phases") or []
    return str(phases[-1].get("name", "?")) if phases else "starting"


def one_run(n: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    runs_dir = tmp / f"run-{n}"
    runs_dir.mkdir(parents=True)
    cmd = harness_cmd() + ["run", str(args.topology), "--runs-dir", str(runs_dir)]
    t0 = time.monotonic()
    started = time.time()
    proc = Proc(cmd, tmp / f"run-{n}.log")
    run_id = ""
    code: int | None = None
    try:
        last = 0.0
        while (code := proc.p.poll()) is None:
            elapsed = time.monotonic() - t0
            if elapsed > args.timeout:
                raise BenchError(
                    f"`harness run` still running after {args.timeout:g}s: {proc.tail()}"
                )
            if elapsed - last >= args.progress:
                last = elapsed
                say(f"  run {n + 1}: {elapsed:.0f}s, phase {current_phase(journal_of(runs_dir))}")
            time.sleep(0.5)
        wall = time.monotonic() - t0
    finally:
        with shielded():  # a second Ctrl-C must not cut the cleanup short
            if proc.p.poll() is None:  # interrupted or timed out: let the harness clean up first
                try:
                    os.killpg(proc.p.pid, signal.SIGTERM)
                    proc.p.wait(90)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    pass
                proc.stop()
            journal = journal_of(runs_dir)
            run_id = str((journal or {}).get("run_id") or "")
            if run_id:  # never teardown(None): that would remove every run on the machine
                removed = teardown(run_id)
                if removed != (0, 0):
                    say(
                        f"  removed what run {run_id} left behind: {removed[0]} containers, {removed[1]} networks"
                    )
    if journal is None:
        raise BenchError(f"`harness run` exited {code} without a journal: {proc.tail()}")
    phases = []
    for ph in journal.get("phases") or []:
        s, e = ph.get("started_at"), ph.get("ended_at")
        phases.append(
            {
                "name": ph.get("name"),
                "status": ph.get("status"),
                "seconds": (e - s) if s is not None and e is not None else None,
            }
        )
    accounted = sum(p["seconds"] or 0.0 for p in phases)
    kept = ""
    if code not in (0, 1):  # no verdict: keep the run's directory (journal, locust.log) to look at
        dest = RESULTS / f"failed-run-{run_id or n}"
        shutil.copytree(runs_dir, dest, dirs_exist_ok=True)
        shutil.copy(proc.log, dest / "harness-run.log")
        kept = str(dest.relative_to(ROOT))
    return {
        "n": n,
        "run_id": run_id,
        "exit_code": code,
        "verdict": VERDICTS.get(code, f"exit {code}") if code is not None else "?",
        "status": journal.get("status"),
        "error": journal.get("error"),
        "started_at": started,
        "wall_s": wall,
        "phases": phases,
        "outside_phases_s": wall - accounted,
        "not_passed": [
            f"{a.get('name')}: {a.get('status')} ({a.get('message') or ''})".replace(" ()", "")
            for a in journal.get("assertions") or []
            if a.get("status") != "passed"
        ],
        "log_tail": proc.tail(3),
        "kept": kept,
    }


def summarize(runs: list[dict[str, Any]], load_s: float) -> dict[str, Any]:
    judged = [r for r in runs if r["exit_code"] in (0, 1)]  # reached a verdict: a complete run
    walls = [r["wall_s"] for r in judged]
    names: list[str] = []
    for r in runs:
        for p in r["phases"]:
            if p["name"] not in names:
                names.append(p["name"])
    phase_medians = {
        name: median(
            [
                p["seconds"]
                for r in runs
                for p in r["phases"]
                if p["name"] == name and p["seconds"] is not None
            ]
        )
        for name in names
    }
    worst = max(walls, default=None)
    return {
        "median_wall_s": median(walls),
        "worst_wall_s": worst,
        "configured_load_s": load_s,
        "phase_median_s": phase_medians,
        "goal": {
            "wall_s": f"< {GOAL_S:g}",
            "met": bool(walls)
            and len(judged) == len(runs)
            and worst is not None
            and worst < GOAL_S,
        },
    }


def print_tables(
    runs: list[dict[str, Any]], summary: dict[str, Any], topology: str, note: str
) -> None:
    console.print(f"[bold]bench/run[/]: `harness run {topology}`")
    t = Table(title="wall time and phases (s)")
    t.add_column("phase")
    for r in runs:
        t.add_column(f"run {r['n'] + 1}", justify="right")
    if len(runs) > 1:
        t.add_column("median", justify="right")
    for name, med in summary["phase_median_s"].items():
        cells = []
        for r in runs:
            p = next((p for p in r["phases"] if p["name"] == name), None)
            cells.append(
                "-"
                if p is None
                else fmt(p["seconds"], ".1f")
                + ("" if p["status"] == "completed" else f" ({p['status']})")
            )
        t.add_row(name, *cells, *([fmt(med, ".1f")] if len(runs) > 1 else []))
    t.add_row(
        "outside the phases",
        *[fmt(r["outside_phases_s"], ".1f") for r in runs],
        *([fmt(median([r["outside_phases_s"] for r in runs]), ".1f")] if len(runs) > 1 else []),
    )
    t.add_row(
        "[bold]wall time[/]",
        *[f"[bold]{r['wall_s']:.1f}[/]" for r in runs],
        *([f"[bold]{fmt(summary['median_wall_s'], '.1f')}[/]"] if len(runs) > 1 else []),
    )
    t.add_row(
        "exit code",
        *[f"{r['exit_code']} ({r['verdict']})" for r in runs],
        *([""] if len(runs) > 1 else []),
    )
    console.print(t)
    g = summary["goal"]
    verdict = "[green]met[/]" if g["met"] else "[red]missed[/]"
    console.print(
        f"goal: wall time < {GOAL_S:g} s for a complete run: {verdict} (worst {fmt(summary['worst_wall_s'], '.1f', ' s')}; "
        f"the load itself is configured to last {summary['configured_load_s']:g} s)"
    )
    for r in runs:
        for line in r.get("not_passed") or []:
            console.print(f"[yellow]run {r['n'] + 1}[/]: assertion {line}")
        if r["exit_code"] not in (0, 1) or r["error"]:
            kept = f" (kept in {r['kept']})" if r.get("kept") else ""
            console.print(f"[yellow]run {r['n'] + 1}[/]: {r['error'] or r['log_tail']}{kept}")
    console.print(f"[yellow]note:[/] {note}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python bench/run.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "topology",
        nargs="?",
        type=Path,
        default=TOPOLOGY,
        help="topology to run (default topologies/ha.yaml)",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs, one after the other (default 1)")
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="give up on a run after this many seconds (default 600)",
    )
    p.add_argument(
        "--progress",
        type=float,
        default=15.0,
        help="print the current phase every N seconds (default 15)",
    )
    a = p.parse_args(argv)
    if a.repeat < 1 or a.timeout <= 0 or a.progress <= 0:
        p.error("--repeat >= 1, --timeout and --progress > 0")
    a.topology = a.topology.resolve()
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    install_sigterm()
    info = machine()
    topo = load_topology(args.topology)  # invalid input fails here, before anything starts
    shown = str(
        args.topology.relative_to(ROOT) if args.topology.is_relative_to(ROOT) else args.topology
    )
    started = time.time()
    runs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-run-") as tmpd:
            for n in range(args.repeat):
                say(f"run {n + 1}/{args.repeat}: harness run {shown}")
                r = one_run(n, args, Path(tmpd))
                runs.append(r)
                say(f"  run {n + 1}: {r['wall_s']:.1f}s, exit {r['exit_code']} ({r['verdict']})")
    except (BenchError, HarnessError, DockerException) as exc:
        console.print(f"[red]bench/run could not measure:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: the run was stopped and torn down")
        return 2
    summary = summarize(runs, topo.load.duration)
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    note = busy_note(info)
    print_tables(runs, summary, shown, note)
    path = write_result(
        "run",
        {
            "bench": "run",
            "started_at": started,
            "ended_at": time.time(),
            "topology": shown,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": info,
            "note": note,
            "runs": runs,
            **summary,
        },
    )
    console.print(f"result: {path.relative_to(ROOT)}")
    return 0 if summary["goal"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
