"""What a full `harness run TOPOLOGY` (default topologies/ha.yaml) costs beyond its load.

Runs `harness run TOPOLOGY --runs-dir <tmp>` as a subprocess --repeat times (images are
expected to be built already: `harness images build`), timing each from process start to exit,
and splits the wall time with the run's journal.json: start-up (interpreter, validation, stale
runs collected) until the first phase, each journaled phase (build, up, baseline, load,
post-run, verdict, down), the load phase's own start-up (watchers, Locust started and its first
user running) and tail (Prometheus's final scrape, rollback, Locust released) around the
configured duration, and the report written after the last phase. The overhead is the wall
time minus the configured load duration. Whatever happens, the run's containers are removed:
the harness tears its run down itself, and this script calls
`harness.runtime.stack.teardown(run_id)` afterwards all the same (Ctrl-C is forwarded to the
harness as SIGTERM first, so it can roll back and clean up).

Goal (issue 15): <= 10 s of overhead beyond the load, for a run that reaches a verdict.

Exit code: 0 measured and goal met, 1 measured and goal missed (or a run reached no verdict),
2 could not measure (or interrupted). Results: a table, bench/results/run-<timestamp>.json.
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
    fmt_mmm,
    install_sigterm,
    machine,
    median,
    mmm,
    paired_ratios,
    parser,
    ratio_last,
    say,
    shown,
    write_result,
)
from docker.errors import DockerException
from rich.table import Table

from harness.errors import HarnessError
from harness.plan.check import load_topology
from harness.runtime.signals import shielded
from harness.runtime.stack import teardown

GOAL_S = 10.0  # overhead beyond the configured load duration
TOPOLOGY = ROOT / "topologies" / "ha.yaml"
CURRENT = "working tree"
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


def side_cmd(side: str, tmp: Path) -> tuple[list[str], dict[str, str] | None]:
    """The harness of this working tree, or of revision `side` exported under tmp (its
    package first on the path; -P keeps the current directory, this tree, off it)."""
    if side == CURRENT:
        return harness_cmd(), None
    code = "from harness.cli import main; raise SystemExit(main())"
    env = {**os.environ, "PYTHONPATH": str(tmp / "rev" / side)}
    return [sys.executable, "-P", "-c", code], env


def export_revision(rev: str, tmp: Path) -> None:
    dest = tmp / "rev" / rev
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise BenchError(f"git archive {rev}: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)


def one_run(n: int, args: argparse.Namespace, tmp: Path, side: str = "") -> dict[str, Any]:
    side = side or CURRENT
    runs_dir = tmp / f"run-{n}"
    runs_dir.mkdir(parents=True)
    exe, env = side_cmd(side, tmp)
    cmd = exe + ["run", str(args.topology), "--runs-dir", str(runs_dir)]
    started = time.time()
    t0 = time.monotonic()
    proc = Proc(cmd, tmp / f"run-{n}.log", env=env)
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
            time.sleep(0.05)
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
    kept = ""
    if code not in (0, 1):  # no verdict: keep the run's directory (journal, locust.log) to look at
        dest = RESULTS / f"failed-run-{run_id or n}"
        shutil.copytree(runs_dir, dest, dirs_exist_ok=True)
        shutil.copy(proc.log, dest / "harness-run.log")
        kept = str(dest.relative_to(ROOT))
    return {
        "n": n,
        "side": side,
        "run_id": run_id,
        "exit_code": code,
        "verdict": VERDICTS.get(code, f"exit {code}") if code is not None else "?",
        "status": journal.get("status"),
        "error": journal.get("error"),
        "started_at": started,
        "wall_s": wall,
        "overhead_s": wall - args.load_s,
        "steps": steps(journal, started, started + wall, args.load_s),
        "phase_timings": {  # what the phases journal of their own steps (up, post-run)
            p["name"]: p["timings"] for p in journal.get("phases") or [] if p.get("timings")
        },
        "not_passed": [
            f"{a.get('name')}: {a.get('status')} ({a.get('message') or ''})".replace(" ()", "")
            for a in journal.get("assertions") or []
            if a.get("status") != "passed"
        ],
        "log_tail": proc.tail(3),
        "kept": kept,
    }


def steps(journal: dict[str, Any], started: float, ended: float, load_s: float) -> dict[str, float]:
    """The wall time split by the journal's clock: every second lands in exactly one step, so
    the steps add up to the wall time (the process's own start and exit included)."""
    out: dict[str, float] = {}
    phases = [p for p in journal.get("phases") or [] if p.get("started_at") and p.get("ended_at")]
    if not phases:
        return {"(no phase journaled)": ended - started}
    out["start-up (interpreter, validate, stale runs)"] = phases[0]["started_at"] - started
    gaps, cursor = 0.0, phases[0]["started_at"]
    for p in phases:
        gaps += max(0.0, p["started_at"] - cursor)
        secs = p["ended_at"] - p["started_at"]
        load_at = journal.get("load_started_at")
        if p["name"] == "load" and load_at:
            out["load: start (watchers, Locust up, first user)"] = load_at - p["started_at"]
            out["load: configured duration"] = min(load_s, secs)
            out["load: tail (final scrape, rollback, release)"] = (
                p["ended_at"] - load_at - min(load_s, secs)
            )
        else:
            out[p["name"]] = out.get(p["name"], 0.0) + secs
        cursor = p["ended_at"]
    out["between phases"] = gaps
    out["report, exit"] = ended - cursor
    return out


def summarize(runs: list[dict[str, Any]], load_s: float) -> dict[str, Any]:
    judged = [r for r in runs if r["exit_code"] in (0, 1)]  # reached a verdict: a complete run
    names: list[str] = []
    for r in runs:
        names += [k for k in r["steps"] if k not in names]
    step_medians = {
        name: median([r["steps"][name] for r in runs if name in r["steps"]]) for name in names
    }
    overheads = [r["overhead_s"] for r in judged]
    out: dict[str, Any] = {
        "configured_load_s": load_s,
        "step_median_s": step_medians,
        "wall_s": mmm([r["wall_s"] for r in judged]) if judged else None,
        "overhead_s": mmm(overheads) if overheads else None,
    }
    out["goal"] = {
        "overhead_s": f"<= {GOAL_S:g}",
        "met": bool(judged) and len(judged) == len(runs) and out["overhead_s"]["median"] <= GOAL_S,
    }
    return out


def print_tables(
    runs: list[dict[str, Any]], summary: dict[str, Any], topology: str, note: str
) -> None:
    console.print(f"[bold]bench/run[/]: `harness run {topology}`")
    t = Table(title="where the wall time goes (s)")
    t.add_column("step")
    for r in runs:
        side = f" ({r['side']})" if r.get("side", CURRENT) != CURRENT else ""
        t.add_column(f"run {r['n'] + 1}{side}", justify="right")
    t.add_column(f"median ({CURRENT})", justify="right")
    for name, med in summary["step_median_s"].items():
        t.add_row(name, *[fmt(r["steps"].get(name), ".2f") for r in runs], fmt(med, ".2f"))
    mine = [r for r in runs if r.get("side", CURRENT) == CURRENT]  # the median column's runs
    t.add_row(
        "[bold]wall time[/]",
        *[f"[bold]{r['wall_s']:.2f}[/]" for r in runs],
        fmt(median([r["wall_s"] for r in mine]), ".2f"),
    )
    t.add_row(
        "[bold]overhead (wall - load)[/]",
        *[f"[bold]{r['overhead_s']:.2f}[/]" for r in runs],
        fmt(median([r["overhead_s"] for r in mine]), ".2f"),
    )
    t.add_row("exit code", *[f"{r['exit_code']} ({r['verdict']})" for r in runs], "")
    console.print(t)
    for r in runs:
        for line in r.get("not_passed") or []:
            console.print(f"[yellow]run {r['n'] + 1}[/]: assertion {line}")
        if r["exit_code"] not in (0, 1) or r["error"]:
            kept = f" (kept in {r['kept']})" if r.get("kept") else ""
            console.print(f"[yellow]run {r['n'] + 1}[/]: {r['error'] or r['log_tail']}{kept}")
    console.print(f"[yellow]note:[/] {note}")
    g, o = summary["goal"], summary["overhead_s"]
    verdict = "[green]met[/]" if g["met"] else "[red]missed[/]"
    console.print(
        f"overhead beyond {summary['configured_load_s']:g} s of load, median of {len(mine)} runs "
        f"({CURRENT}): "
        f"{fmt_mmm(o, '.1f', ' s') if o else '-'}; goal {g['overhead_s']} s: {verdict}"
    )


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = parser("run", __doc__, repeat=3)
    p.add_argument(
        "topology",
        nargs="?",
        type=Path,
        default=TOPOLOGY,
        help="topology to run (default topologies/ha.yaml)",
    )
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
    p.add_argument(
        "--compare",
        metavar="REV",
        help="also time the harness of git revision REV (exported, not checked out), "
        "interleaved with this working tree's: before/after from the same script",
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
    args.load_s = topo.load.duration
    name = shown(args.topology)
    started = time.time()
    runs: list[dict[str, Any]] = []
    sides = [args.compare, CURRENT] if args.compare else [CURRENT]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-run-") as tmpd:
            if args.compare:
                export_revision(args.compare, Path(tmpd))
            for side in sides:  # not timed: a first build would show as the build phase
                exe, env = side_cmd(side, Path(tmpd))
                say(f"images of {side}: {exe[0]} images build")
                subprocess.run(exe + ["images", "build"], env=env, capture_output=True)
            order = [s for n in range(args.repeat) for s in (sides if n % 2 else sides[::-1])]
            for n, side in enumerate(order):
                say(f"run {n + 1}/{len(order)} ({side}): harness run {name}")
                r = one_run(n, args, Path(tmpd), side)
                r["round"] = n // len(sides)  # a round runs each side once, back to back
                runs.append(r)
                say(
                    f"  run {n + 1}: {r['wall_s']:.1f}s, overhead {r['overhead_s']:.1f}s, "
                    f"exit {r['exit_code']} ({r['verdict']})"
                )
    except (BenchError, HarnessError, DockerException) as exc:
        console.print(f"[red]bench/run could not measure:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: the run was stopped and torn down")
        return 2
    summary = summarize([r for r in runs if r["side"] == CURRENT], args.load_s)
    if args.compare:
        judged = {(r["round"], r["side"]): r for r in runs if r["exit_code"] in (0, 1)}
        rounds = [n for n in range(args.repeat) if all((n, s) in judged for s in sides)]
        summary["compare"] = {
            "revision": args.compare,
            "before": summarize([r for r in runs if r["side"] == args.compare], args.load_s),
            "paired_overhead_ratios": paired_ratios(  # rounds where both reached a verdict
                [judged[n, CURRENT]["overhead_s"] for n in rounds],
                [judged[n, args.compare]["overhead_s"] for n in rounds],
            ),
        }
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    note = busy_note(info)
    path = write_result(
        "run",
        {
            "bench": "run",
            "started_at": started,
            "ended_at": time.time(),
            "topology": name,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": info,
            "note": note,
            "runs": runs,
            **summary,
        },
    )
    console.print(f"result: {shown(path)}")
    print_tables(runs, summary, name, note)
    if args.compare:
        b = summary["compare"]["before"]["overhead_s"]
        console.print(
            f"overhead of {args.compare} (before): {fmt_mmm(b, '.1f', ' s') if b else '-'}"
        )
        ratio_last(
            f"overhead, this working tree / {args.compare}, paired runs",
            summary["compare"]["paired_overhead_ratios"],
        )
    return 0 if summary["goal"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
