"""Requests per second through one kept-up stack, four ways, to price the harness's load path.

  raw      plain Locust (`python -m locust`), no harness plugin
  harness  the harness's Locust process (`python -m harness.load.locust_main`, built by
           harness.load.process.LocustProcess) with its metrics plugin on
  workers  the same in distributed mode: one master + N worker processes
  wrk      wrk against the same URL: the stack's ceiling on this machine

Every side runs bench/locustfiles/health.py (FastHttpUser, no wait, `GET /health` only) or
`wrk URL/health` for --seconds with --users users (wrk: as many connections). Trials alternate
the order of the sides (raw, harness, workers, wrk, then backwards) to cancel drift; the figure
of a side is the median over --repeat trials, and a ratio is the median over trials of the two
sides' ratio within one trial (raw and harness always run back to back, so do workers and wrk).
Goal: harness/raw >= 0.95.

Exit code: 0 measured and goal met, 1 measured and goal missed, 2 could not measure (or
interrupted). Results: a table, and bench/results/load-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import (
    BENCH,
    ROOT,
    BenchError,
    Proc,
    busy_between,
    busy_note,
    children_cpu,
    console,
    cpu_times,
    first_error,
    fmt,
    install_sigterm,
    kept_stack,
    machine,
    median,
    other_harness_runs,
    say,
    write_result,
)
from docker.errors import DockerException
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from harness.errors import HarnessError
from harness.load.process import LocustProcess
from harness.observe import metrics
from harness.observe.exporter import free_port
from harness.spec.models import Load

SIDES = ("raw", "harness", "workers", "wrk")
LOCUSTFILE = BENCH / "locustfiles" / "health.py"
TOPOLOGY = BENCH / "topologies" / "load.yaml"
GOAL_HARNESS_VS_RAW = 0.95
HARNESS_MODULE = ["-m", "harness.load.locust_main"]


@dataclass
class Sample:
    side: str
    trial: int
    rps: float  # Locust: the CSV's Aggregated Requests/s; wrk: its Requests/sec
    requests: int
    failures: int
    wall_s: float  # wall time of the side, process start to exit
    cpu_s: float  # CPU seconds the generator's processes used (user + system)
    # harness sides: sum(harness_requests_total) / (finished - started), from the plugin
    metrics_rps: float | None = None
    metrics_requests: int | None = None
    cpu_warning: bool = False  # Locust logged "CPU usage above 90%"
    machine_busy: float | None = None  # share of all cores busy during the side (everything)
    other_runs: int = 0  # other harness runs up on this engine when the side started

    @property
    def cpu_ms_per_1k(self) -> float | None:
        return 1e6 * self.cpu_s / self.requests if self.requests else None


class CsvLocust(LocustProcess):
    """The harness's own Locust launcher, plus `--csv` on the process that owns the stats."""

    def __init__(self, *args: Any, csv_prefix: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.csv_prefix = csv_prefix

    def command(self, role: str = "local") -> list[str]:
        cmd = super().command(role)
        if role == "worker":
            return cmd
        n = len(self.load.user_classes)  # positional user class names come last
        head, tail = (cmd[:-n], cmd[-n:]) if n else (cmd, [])
        return head + ["--csv", str(self.csv_prefix)] + tail


def read_csv(prefix: Path) -> tuple[float, int, int]:
    path = Path(f"{prefix}_stats.csv")
    try:
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("Name") == "Aggregated":
                    return (
                        float(row["Requests/s"]),
                        int(row["Request Count"]),
                        int(row["Failure Count"]),
                    )
    except OSError as exc:
        raise BenchError(f"no Locust CSV at {path}: {exc}") from None
    raise BenchError(f"{path}: no Aggregated row")


def scrape(addr: str) -> dict[str, float]:
    """The plugin's request count and start/finish instants from one Locust process."""
    text = httpx.get(f"http://{addr}/metrics", timeout=2.0).text
    out = {"requests": 0.0, "started": 0.0, "finished": 0.0}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == metrics.REQUESTS.total:
                out["requests"] += s.value
            elif s.name == metrics.LOAD_STARTED.name:
                out["started"] = s.value
            elif s.name == metrics.LOAD_FINISHED.name:
                out["finished"] = s.value
    return out


def cpu_warned(log: Path) -> bool:
    try:
        return "CPU usage above" in log.read_text(errors="replace")
    except OSError:
        return False


def make_locust(url: str, args: argparse.Namespace, workdir: Path, workers: int) -> CsvLocust:
    load = Load(
        locustfile=str(LOCUSTFILE),
        users=args.users,
        spawn_rate=args.users,
        duration=args.seconds,
        workers=workers,
    )
    addrs = [f"127.0.0.1:{free_port('127.0.0.1')}" for _ in range(1 + workers)]
    return CsvLocust(
        load,
        url,
        "bench",
        workdir,
        addrs,
        master_port=free_port("127.0.0.1"),
        csv_prefix=workdir / "locust",
    )


def run_raw(url: str, args: argparse.Namespace, workdir: Path, trial: int) -> Sample:
    """The exact command line the harness uses, with `-m locust` instead of its entry point and
    no HARNESS_* variable in the environment: the plugin stays off."""
    lp = make_locust(url, args, workdir, workers=0)
    cmd = lp.command("local")
    if cmd[1:3] != HARNESS_MODULE:
        raise BenchError(f"unexpected harness Locust command: {cmd[:4]}")
    cmd[1:3] = ["-m", "locust"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    cpu0, t0 = children_cpu(), time.monotonic()
    proc = Proc(cmd, workdir / "locust.log", env)
    try:
        code = proc.wait(args.seconds + 60)
    finally:
        proc.stop()
    wall = time.monotonic() - t0
    if code != 0:
        raise BenchError(f"raw locust exited {code}: {proc.first_error() or proc.tail()}")
    rps, requests, failures = read_csv(lp.csv_prefix)
    return Sample(
        "raw",
        trial,
        rps,
        requests,
        failures,
        wall,
        children_cpu() - cpu0,
        cpu_warning=cpu_warned(proc.log),
    )


def run_harness(
    url: str, args: argparse.Namespace, workdir: Path, trial: int, workers: int
) -> Sample:
    """LocustProcess as the runner drives it: start, wait for the plugin's start instant, wait
    until every process reports its finish, take the final figures from /metrics, release."""
    lp = make_locust(url, args, workdir, workers)
    side = "workers" if workers else "harness"
    cpu0, t0 = children_cpu(), time.monotonic()
    final: dict[str, dict[str, float]] = {}
    try:
        lp.start()
        started = lp.wait_started(timeout=60.0)
        time.sleep(max(0.0, started + args.seconds - time.time()))
        deadline = time.monotonic() + 30.0
        while len(final) < len(lp.metrics_addrs):
            if time.monotonic() > deadline:
                raise BenchError(f"{side}: Locust never reported its finish: {lp.log_tail()}")
            for addr in lp.metrics_addrs:
                if addr in final:
                    continue
                try:
                    figures = scrape(addr)
                except httpx.HTTPError:
                    continue
                if figures["finished"] > 0:
                    final[addr] = figures
            if any(p.poll() is not None for p in lp.procs):
                raise BenchError(
                    f"{side}: a Locust process exited before its release: {lp.log_tail()}"
                )
            time.sleep(0.2)
        lp.release(timeout=30.0)
    finally:
        lp.stop()
    wall = time.monotonic() - t0
    codes = [p.returncode for p in lp.procs]
    if any(c != 0 for c in codes):
        why = first_error(lp.log_path) or lp.log_tail()
        raise BenchError(
            f"{side}: Locust exit codes {codes} (2: an exception in the process): {why}"
        )
    rps, requests, failures = read_csv(lp.csv_prefix)
    head = final[lp.metrics_addr]  # local process, or the master (test start/stop instants)
    counted = sum(f["requests"] for f in final.values())
    span = head["finished"] - head["started"]
    return Sample(
        side,
        trial,
        rps,
        requests,
        failures,
        wall,
        children_cpu() - cpu0,
        metrics_rps=counted / span if span > 0 else None,
        metrics_requests=int(counted),
        cpu_warning=cpu_warned(lp.log_path),
    )


WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b")
WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def run_wrk(
    url: str, args: argparse.Namespace, workdir: Path, trial: int, seconds: float | None = None
) -> Sample:
    seconds = args.seconds if seconds is None else seconds
    conns = max(args.users, args.wrk_threads)
    cmd = [
        "wrk",
        "-t",
        str(args.wrk_threads),
        "-c",
        str(conns),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "5s",
        f"{url}/health",
    ]
    cpu0, t0 = children_cpu(), time.monotonic()
    proc = Proc(cmd, workdir / "wrk.log")
    try:
        code = proc.wait(seconds + 30)
    finally:
        proc.stop()
    wall = time.monotonic() - t0
    out = proc.log.read_text(errors="replace")
    m, total = WRK_RPS.search(out), WRK_TOTAL.search(out)
    if code != 0 or m is None or total is None:
        raise BenchError(f"wrk exited {code}: {proc.tail()}")
    failures = sum(int(x) for x in WRK_SOCKET.findall(out)[0]) if WRK_SOCKET.search(out) else 0
    if n := WRK_NON2XX.search(out):
        failures += int(n.group(1))
    return Sample(
        "wrk", trial, float(m.group(1)), int(total.group(1)), failures, wall, children_cpu() - cpu0
    )


def run_side(
    side: str, url: str, args: argparse.Namespace, workdir: Path, trial: int, mine: str
) -> Sample:
    workdir.mkdir(parents=True)
    others, before = len(other_harness_runs(mine)), cpu_times()
    if side == "raw":
        s = run_raw(url, args, workdir, trial)
    elif side == "harness":
        s = run_harness(url, args, workdir, trial, workers=0)
    elif side == "workers":
        s = run_harness(url, args, workdir, trial, workers=args.workers)
    else:
        s = run_wrk(url, args, workdir, trial)
    s.machine_busy, s.other_runs = busy_between(before, cpu_times()), others
    return s


def check_url(url: str) -> None:
    try:
        r = httpx.get(f"{url}/health", timeout=5.0)
    except httpx.HTTPError as exc:
        raise BenchError(f"{url}/health unreachable: {exc}") from None
    if r.status_code != 200:
        raise BenchError(f"{url}/health answered {r.status_code}")


def summarize(samples: list[Sample], sides: list[str]) -> dict[str, Any]:
    by: dict[str, list[Sample]] = {s: [x for x in samples if x.side == s] for s in sides}
    med = {s: median([x.rps for x in xs]) for s, xs in by.items()}

    def ratio(a: str, b: str) -> dict[str, Any] | None:
        top, bottom = med.get(a), med.get(b)
        if top is None or not bottom:
            return None
        pairs = [x.rps / y.rps for x, y in zip(by[a], by[b], strict=False) if y.rps]
        return {"of_medians": top / bottom, "per_trial": pairs, "median_per_trial": median(pairs)}

    ratios = {
        f"{a}/{b}": ratio(a, b)
        for a, b in (
            ("harness", "raw"),
            ("workers", "wrk"),
            ("raw", "wrk"),
            ("harness", "wrk"),
            ("workers", "harness"),
        )
    }
    hr = ratios.get("harness/raw")
    cpu = {s: median([c for x in xs if (c := x.cpu_ms_per_1k) is not None]) for s, xs in by.items()}
    cpu_h, cpu_r = cpu.get("harness"), cpu.get("raw")
    ceiling = med.get("wrk")
    rel = {s: m / ceiling for s in ("raw", "harness", "workers") if ceiling and (m := med.get(s))}
    near = [s for s, r in rel.items() if 0.9 <= r <= 1.1]
    above = [s for s, r in rel.items() if r > 1.1]
    return {
        "median_rps": med,
        "ratios": {k: v for k, v in ratios.items() if v is not None},
        "median_cpu_ms_per_1k": cpu,
        "cpu_per_request_harness/raw": cpu_h / cpu_r if cpu_h and cpu_r else None,
        "near_stack_ceiling": near,  # within 10% of wrk: the stack, not the generator, set the pace
        "above_stack_ceiling": above,  # > 110% of wrk: the machine's load changed between sides
        "goal": {
            "harness/raw": f">= {GOAL_HARNESS_VS_RAW}",
            "on": "median of the per-trial ratios (each pair measured back to back)",
            "met": None if hr is None else hr["median_per_trial"] >= GOAL_HARNESS_VS_RAW,
        },
    }


def print_tables(
    samples: list[Sample], sides: list[str], summary: dict[str, Any], note: str
) -> None:
    t = Table(title="bench/load: requests per second through one stack (GET /health)")
    for col in (
        "side",
        "per trial (req/s)",
        "median req/s",
        "failures",
        "metrics req/s",
        "CPU ms / 1k req",
        "CPU>90% warning",
        "machine busy",
        "other runs",
    ):
        t.add_column(col, justify="left" if col == "side" else "right")
    for side in sides:
        xs = [x for x in samples if x.side == side]
        if not xs:
            continue
        t.add_row(
            side,
            " ".join(f"{x.rps:.0f}" for x in xs),
            fmt(summary["median_rps"][side], ".0f"),
            f"{sum(x.failures for x in xs)}/{sum(x.requests for x in xs)}",
            fmt(median([x.metrics_rps for x in xs if x.metrics_rps is not None]), ".0f"),
            fmt(median([c for x in xs if (c := x.cpu_ms_per_1k) is not None]), ".0f"),
            "yes" if any(x.cpu_warning for x in xs) else "no",
            " ".join(
                fmt(None if x.machine_busy is None else 100 * x.machine_busy, ".0f", "%")
                for x in xs
            ),
            " ".join(str(x.other_runs) for x in xs),
        )
    console.print(t)
    r = Table(title="req/s ratios (pairs: the two sides of one trial, run back to back)")
    for col in ("ratio", "median of pairs", "per trial", "of the medians", "goal"):
        r.add_column(col, justify="left" if col == "ratio" else "right")
    for name, v in summary["ratios"].items():
        goal = ""
        if name == "harness/raw":
            ok = v["median_per_trial"] >= GOAL_HARNESS_VS_RAW
            goal = f"{'[green]met' if ok else '[red]missed'}[/] (>= {GOAL_HARNESS_VS_RAW})"
        r.add_row(
            name,
            fmt(v["median_per_trial"], ".3f"),
            " ".join(f"{p:.3f}" for p in v["per_trial"]),
            f"{v['of_medians']:.3f}",
            goal,
        )
    console.print(r)
    if (c := summary.get("cpu_per_request_harness/raw")) is not None:
        console.print(
            f"generator CPU per request, harness/raw: {c:.3f} "
            "(the plugin's cost, whatever the stack's ceiling)"
        )
    if near := summary.get("near_stack_ceiling"):
        console.print(
            f"[yellow]{', '.join(near)} within 10% of wrk's req/s[/]: the stack, not the generator, "
            "set the pace there, so req/s ratios understate generator costs (CPU / 1k req shows them)"
        )
    if above := summary.get("above_stack_ceiling"):
        console.print(
            f"[yellow]{', '.join(above)} beat wrk's req/s by > 10%[/]: the machine's load changed "
            "between sides (see 'machine busy'); more --repeat, or a quieter machine"
        )
    console.print(f"[yellow]note:[/] {note}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python bench/load.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seconds", type=int, default=20, help="length of each side's run (default 20)")
    p.add_argument(
        "--users", type=int, default=50, help="Locust users, and wrk connections (default 50)"
    )
    p.add_argument(
        "--repeat", type=int, default=3, help="trials per side; the median is reported (default 3)"
    )
    p.add_argument(
        "--workers", type=int, default=2, help="worker processes of the `workers` side (default 2)"
    )
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument(
        "--sides", default=",".join(SIDES), help=f"comma-separated subset of {','.join(SIDES)}"
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds of wrk before the trials, not counted (default 3)",
    )
    p.add_argument("--pause", type=float, default=2.0, help="seconds between two sides (default 2)")
    p.add_argument(
        "--topology",
        type=Path,
        default=TOPOLOGY,
        help="stack to measure against (default %(default)s)",
    )
    a = p.parse_args(argv)
    a.sides = [s.strip() for s in a.sides.split(",") if s.strip()]
    bad = [s for s in a.sides if s not in SIDES]
    if bad or not a.sides:
        p.error(f"--sides: unknown {bad}; pick from {','.join(SIDES)}")
    if a.seconds < 2 or a.users < 1 or a.repeat < 1 or a.workers < 1 or a.wrk_threads < 1:
        p.error("--seconds >= 2, --users, --repeat, --workers, --wrk-threads >= 1")
    a.topology = a.topology.resolve()
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    install_sigterm()
    info = machine()
    samples: list[Sample] = []
    started = time.time()
    run_id = ""
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-load-") as tmpd,
            kept_stack(args.topology, Path(tmpd) / "runs") as run,
        ):
            run_id, url = run.run_id, run.plan.load_url
            check_url(url)
            if args.warmup > 0:
                say(f"warm-up: {args.warmup:g}s of wrk")
                run_wrk(url, args, Path(tmpd), -1, seconds=args.warmup)
            for trial in range(args.repeat):
                order = args.sides if trial % 2 == 0 else list(reversed(args.sides))
                for side in order:
                    say(
                        f"trial {trial + 1}/{args.repeat}: {side} ({args.users} users, {args.seconds}s)"
                    )
                    s = run_side(side, url, args, Path(tmpd) / f"t{trial}-{side}", trial, run_id)
                    samples.append(s)
                    extra = (
                        f", metrics {s.metrics_rps:.0f} req/s" if s.metrics_rps is not None else ""
                    )
                    say(
                        f"  {side}: {s.rps:.1f} req/s, {s.failures}/{s.requests} failed{extra}; "
                        f"machine {fmt((s.machine_busy or 0) * 100, '.0f')}% busy, {s.other_runs} other run(s)"
                    )
                    time.sleep(args.pause)
    except (BenchError, HarnessError, DockerException) as exc:
        console.print(f"[red]bench/load could not measure:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: stack torn down")
        return 2
    summary = summarize(samples, args.sides)
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    note = busy_note(info)
    print_tables(samples, args.sides, summary, note)
    path = write_result(
        "load",
        {
            "bench": "load",
            "started_at": started,
            "ended_at": time.time(),
            "run_id": run_id,
            "topology": str(
                args.topology.relative_to(ROOT)
                if args.topology.is_relative_to(ROOT)
                else args.topology
            ),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": info,
            "note": note,
            "samples": [asdict(s) | {"cpu_ms_per_1k": s.cpu_ms_per_1k} for s in samples],
            **summary,
        },
    )
    console.print(f"result: {path.relative_to(ROOT)}")
    met = summary["goal"]["met"]
    return 0 if met is None or met else 1


if __name__ == "__main__":
    sys.exit(main())
