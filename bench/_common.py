"""What the bench scripts share: a stack brought up with the harness's own API and always torn
down, child processes in their own process group (killed with it), machine facts, statistics
and the JSON result file under bench/results/."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
if str(ROOT) not in sys.path:  # `python bench/x.py` puts bench/ first, not the repository
    sys.path.insert(1, str(ROOT))

from rich.console import Console  # noqa: E402

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)

SHARED_CPUS_NOTE = (
    "{cpus} CPU cores shared by the load generator, the stack's containers and the harness "
    "itself: figures are relative to this machine and to whatever else ran on it."
)


class BenchError(Exception):
    """The benchmark could not measure (bring-up failed, a child failed, a wait timed out)."""


def say(msg: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {msg}", markup=True)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_sigterm() -> None:
    """SIGTERM behaves like Ctrl-C: every `finally` (teardown included) runs."""
    signal.signal(signal.SIGTERM, _sigterm)


@contextmanager
def kept_stack(topology: Path, runs_dir: Path) -> Iterator[Any]:
    """Bring `topology` up with `harness.runner.Run(keep=True).bring_up()`, yield the Run, and
    remove everything carrying its run label on the way out (success, error, Ctrl-C, SIGTERM)."""
    from harness.runner import Run
    from harness.runtime.signals import shielded
    from harness.runtime.stack import teardown

    run = Run(
        topology, runs_dir=runs_dir, keep=True, say=lambda m: say(f"[dim]{m}[/]"), judged=False
    )
    run_id = run.run_id
    if not run_id:  # teardown(None) would remove every harness run on the machine
        raise BenchError("the harness gave no run id")
    try:
        say(
            f"bringing up {topology.relative_to(ROOT) if topology.is_relative_to(ROOT) else topology} "
            f"as run {run_id}"
        )
        t0 = time.monotonic()
        res = run.bring_up()
        if res.exit_code != 0 or run.plan is None or run.stack is None:
            raise BenchError(f"bring-up failed (exit {res.exit_code}): {res.error}")
        say(f"stack up in {time.monotonic() - t0:.1f}s; load URL {run.plan.load_url}")
        yield run
    finally:
        with shielded():
            removed = teardown(run_id)
            say(f"torn down run {run_id}: {removed[0]} containers, {removed[1]} networks removed")


class Proc:
    """A child process in its own session, output to a log file; `stop()` ends its process
    group by id (SIGTERM, then SIGKILL)."""

    def __init__(self, cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.cmd, self.log = list(cmd), log
        with open(log, "wb") as fh:
            self.p = subprocess.Popen(
                self.cmd,
                env=env,
                cwd=ROOT,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait(self, timeout: float) -> int:
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise BenchError(
                f"{self.cmd[0]} did not finish within {timeout:.0f}s: {self.tail()}"
            ) from None

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.p.poll() is not None:
                return
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.p.wait(5.0)
                return
            except subprocess.TimeoutExpired:
                continue

    def first_error(self) -> str:
        return first_error(self.log)

    def tail(self, n: int = 6) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no output)"
        return " | ".join(lines[-n:]) or "(no output)"


ERROR_LINE = re.compile(r"\b\w*(Error|Exception)\b[:(]")


def first_error(log: Path) -> str:
    """The first line of a log that names an exception (a traceback's last line), or ''."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = next(
                (k for k in range(i + 1, len(lines)) if not lines[k].startswith((" ", "\t"))), None
            )
            if j is not None:
                return lines[j].strip()
    return next((ln.strip() for ln in lines if ERROR_LINE.search(ln)), "")


def children_cpu() -> float:
    """CPU seconds used so far by this process's reaped children (user + system)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            f = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = f[3] + (f[4] if len(f) > 4 else 0)  # idle + iowait
    return sum(f) - idle, sum(f)


def busy_between(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Share of the machine's CPU time that was busy between two cpu_times() readings."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total if total > 0 else None


def other_harness_runs(mine: str | None = None) -> list[str]:
    """Run ids of other harness stacks on this Docker engine (other engineers' tests)."""
    try:
        from harness.runtime import labels
        from harness.runtime.docker import client

        runs = {
            c.labels.get(labels.RUN, "")
            for c in client().containers.list(filters={"label": labels.RUN})
        }
    except Exception:  # noqa: BLE001 - only informative
        return []
    return sorted(r for r in runs if r and r != mine)


def machine() -> dict[str, Any]:
    commit = ""
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "other_harness_runs_at_start": other_harness_runs(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
    }


def busy_note(info: dict[str, Any]) -> str:
    others = info.get("other_harness_runs_at_start") or []
    load = info.get("loadavg_at_start") or []
    note = SHARED_CPUS_NOTE.format(cpus=info.get("cpus"))
    if load:
        note += f" Load average at start: {', '.join(f'{x:g}' for x in load)}."
    if others:
        note += f" {len(others)} other harness run(s) were up at start: {', '.join(others)}."
    return note


def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def mmm(xs: Sequence[float]) -> dict[str, float]:
    """{"min", "median", "max"} of a non-empty sample (what every result file quotes)."""
    if not xs:
        raise BenchError("no sample to summarize")
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def fmt_mmm(s: dict[str, float], spec: str = ".2f", unit: str = "") -> str:
    """`median (min a, max b)` of an mmm() summary."""
    return f"{s['median']:{spec}}{unit} (min {s['min']:{spec}}, max {s['max']:{spec}})"


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a[i] / b[i] for each pair whose b is positive (the pairs ran back to back)."""
    return [x / y for x, y in zip(a, b, strict=True) if y > 0]


def parser(
    prog: str, doc: str | None, repeat: int | None = None, what: str = "runs"
) -> argparse.ArgumentParser:
    """The scaffold every bench script starts from: its docstring as --help, and (when
    `repeat` is given) `--repeat N`, how many times each side is measured."""
    p = argparse.ArgumentParser(
        prog=f"python bench/{prog}.py",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if repeat is not None:
        p.add_argument(
            "--repeat",
            type=int,
            default=repeat,
            help=f"{what}, one after the other (default {repeat})",
        )
    return p


def sides_table(
    title: str,
    samples: dict[str, Sequence[float]],
    ratios: dict[str, float | None] | None = None,
    unit: str = "",
    spec: str = ".1f",
    extra: dict[str, dict[str, str]] | None = None,
    ratio_to: str = "",
) -> None:
    """Print one row per side: its extra columns, the median, every sample and its ratio
    (`ratio_to` names what the ratio is against)."""
    from rich.table import Table

    t = Table(title=title)
    extra = extra or {}
    columns = list(next(iter(extra.values()), {}))
    for col in ["side", *columns, f"median {unit}".strip(), "all"]:
        t.add_column(col)
    if ratios is not None:
        t.add_column(f"ratio to {ratio_to}".strip() if ratio_to else "ratio")
    for side, xs in samples.items():
        row = [side, *(extra.get(side, {}).get(c, "") for c in columns)]
        row += [fmt(median(xs), spec), ", ".join(f"{x:{spec}}" for x in xs)]
        if ratios is not None:
            row.append(fmt(ratios.get(side), ".2f"))
        t.add_row(*row)
    console.print(t)


def ratio_last(
    label: str, ratios: Sequence[float], goal: str = "", met: bool | None = None
) -> None:
    """The last line every bench prints: the median of the paired ratios with min/max, the
    goal and whether it was met."""
    if not ratios:
        console.print(f"{label}: no complete pair, nothing to compare")
        return
    s = mmm(ratios)
    verdict = "" if met is None else (" [green]met[/]" if met else " [red]missed[/]")
    goal_s = f"; goal {goal}{verdict}" if goal else verdict
    console.print(f"{label} (median of {len(ratios)}): {fmt_mmm(s)}{goal_s}")


def worst_abs(xs: Sequence[float]) -> float | None:
    return max((abs(x) for x in xs), default=None)


def fmt(x: float | None, spec: str = ".1f", unit: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{unit}"


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def shown(path: Path) -> str:
    """A path as the scripts print it: relative to the repository when inside it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
