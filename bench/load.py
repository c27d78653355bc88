"""Requests per second and generator CPU per request through the Keepalived VIP of
topologies/ha.yaml's HAProxy pair: the harness's load against raw Locust, and wrk as the
stack's ceiling (issue 15, ask 3).

  raw      plain Locust (`python -m locust`) with the harness's exact command line and no
           HARNESS_* variable: the plugin stays off
  harness  the harness's Locust process (`python -m harness.load.locust_main`, started by
           harness.load.process.LocustProcess) with its metrics plugin on, driven the way the
           runner drives it (wait for the start instant, wait for the finish, scrape, release)
  wrk      `wrk URL/health` (Debian `wrk`) for --wrk-seconds after every pair: the ceiling

Every Locust side runs bench/locustfiles/health.py (FastHttpUser, no wait, `GET /health`).
The stack is brought up once with the harness's API (Run(keep=True).bring_up()) and removed
at the end whatever happens. Pairs alternate their order (raw, harness, then harness, raw) so
drift cancels; a ratio's figure is the median over pairs of the ratio within the pair.
CPU per request: the Locust process's user + system CPU seconds (getrusage of the reaped
child, the same figure as /proc/<pid>/stat at its exit, startup included) / its requests.
--profile S: afterwards one raw and one harness run of S seconds with py-spy attached; the
top frames of both go into the JSON and the output (see bench/_pyspy.py).
Goals: harness/raw >= 0.97 in req/s and <= 1.03 in CPU per request.

Run it under the Docker lock: `flock /tmp/docker.lock .venv/bin/python bench/load.py`.
Exit code: 0 measured and goals met, 1 measured and missed, 2 could not measure.
Results: bench/results/load-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _common
import _pyspy
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
    other_harness_runs,
    say,
    write_result,
)
from docker.errors import DockerException
from prometheus_client.parser import text_string_to_metric_families

from harness.errors import HarnessError
from harness.load.process import LocustProcess
from harness.observe import metrics
from harness.observe.exporter import free_port
from harness.spec.models import Load

LOCUSTFILE = BENCH / "locustfiles" / "health.py"
TOPOLOGY = ROOT / "topologies" / "ha.yaml"
GOAL_RPS, GOAL_CPU = 0.97, 1.03
HARNESS_MODULE = ["-m", "harness.load.locust_main"]


@dataclass
class Sample:
    side: str
    trial: int
    rps: float  # Locust: the CSV's Aggregated Requests/s; wrk: its Requests/sec
    requests: int
    failures: int
    wall_s: float  # wall time of the side, process start to exit
    cpu_s: float  # the generator process's CPU seconds (user + system)
    metrics_rps: float | None = None  # harness: sum(harness_requests_total) / its own span
    metrics_requests: int | None = None
    cpu_warning: bool = False  # Locust logged "CPU usage above 90%"
    machine_busy: float | None = None  # share of all cores busy during the side (everything)
    other_runs: int = 0  # other harness runs up on this engine when the side started
    # the steady window (bench/locustfiles/health.py's marks): CPU seconds and requests in it,
    # and the CPU seconds the process had used when its test started (imports, setup)
    window_cpu_s: float | None = None
    window_requests: int | None = None
    startup_cpu_s: float | None = None
    window: dict[str, float] | None = None  # every mark's field, last minus middle mark

    @property
    def cpu_ms_per_1k(self) -> float | None:
        return 1e6 * self.cpu_s / self.requests if self.requests else None

    @property
    def steady_cpu_ms_per_1k(self) -> float | None:
        if self.window_cpu_s is None or not self.window_requests:
            return None
        return 1e6 * self.window_cpu_s / self.window_requests

    def read_marks(self, path: Path) -> Sample:
        try:
            marks = [json.loads(ln) for ln in path.read_text().splitlines()]
        except (OSError, ValueError) as exc:
            raise BenchError(f"{self.side}: no steady-window marks in {path}: {exc}") from None
        if len(marks) != 3:
            raise BenchError(f"{self.side}: {len(marks)} steady-window marks in {path}, not 3")
        self.startup_cpu_s = marks[0]["cpu"]
        self.window_cpu_s = marks[2]["cpu"] - marks[1]["cpu"]
        self.window_requests = marks[2]["requests"] - marks[1]["requests"]
        self.window = {k: marks[2][k] - marks[1][k] for k in marks[2]}
        return self


def window(args: argparse.Namespace) -> tuple[float, float]:
    """(skip, length) of the steady window: after the spawn, ending 2 s before the stop."""
    skip = min(3.0, args.seconds / 4)
    return skip, args.seconds - skip - 2.0


def marks_env(args: argparse.Namespace, workdir: Path) -> tuple[Path, str]:
    path = workdir / "marks.jsonl"
    skip, length = window(args)
    return path, f"{path}:{skip:g}:{length:g}"


class CsvLocust(LocustProcess):
    """The harness's own Locust launcher, plus `--csv` on the process that owns the stats."""

    def __init__(self, *args: Any, csv_prefix: Path, marks: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.csv_prefix, self.marks = csv_prefix, marks

    def _env(self, role: str, addr: str) -> dict[str, str]:
        return super()._env(role, addr) | ({"BENCH_WINDOW": self.marks} if self.marks else {})

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
        marks=marks_env(args, workdir)[1] if not workers else "",
    )


def run_raw(
    url: str,
    args: argparse.Namespace,
    workdir: Path,
    trial: int,
    spy: Path | None = None,
    side: str = "raw",
) -> Sample:
    """The exact command line the harness uses, with `-m locust` instead of its entry point and
    no HARNESS_* variable in the environment: the plugin stays off. Side `entry` (--control)
    keeps the harness's entry point: its imports, the plugin off."""
    lp = make_locust(url, args, workdir, workers=0)
    cmd = lp.command("local")
    if cmd[1:3] != HARNESS_MODULE:
        raise BenchError(f"unexpected harness Locust command: {cmd[:4]}")
    if side == "raw":
        cmd[1:3] = ["-m", "locust"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    marks, env["BENCH_WINDOW"] = marks_env(args, workdir)
    cpu0, t0 = children_cpu(), time.monotonic()
    proc = Proc(cmd, workdir / "locust.log", env)
    recorder = _pyspy.Recorder(proc.p.pid, spy, marks, 2, window(args)[1]) if spy else None
    try:
        code = proc.wait(args.seconds + 60)
    finally:
        proc.stop()
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    if recorder:  # reaped after the CPU reading: py-spy's own CPU is not counted
        recorder.result()
    if code != 0:
        raise BenchError(f"raw locust exited {code}: {proc.first_error() or proc.tail()}")
    rps, requests, failures = read_csv(lp.csv_prefix)
    s = Sample(side, trial, rps, requests, failures, wall, cpu, cpu_warning=cpu_warned(proc.log))
    return s.read_marks(marks)


def run_harness(
    url: str,
    args: argparse.Namespace,
    workdir: Path,
    trial: int,
    workers: int = 0,
    spy: Path | None = None,
) -> Sample:
    """LocustProcess as the runner drives it: start, wait for the plugin's start instant, wait
    until every process reports its finish, take the final figures from /metrics, release."""
    lp = make_locust(url, args, workdir, workers)
    side = "workers" if workers else "harness"
    cpu0, t0 = children_cpu(), time.monotonic()
    final: dict[str, dict[str, float]] = {}
    recorder = None
    try:
        lp.start()
        if spy:
            marks = workdir / "marks.jsonl"
            recorder = _pyspy.Recorder(lp.procs[0].pid, spy, marks, 2, window(args)[1])
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
    cpu = children_cpu() - cpu0
    if recorder:
        recorder.result()
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
    s = Sample(
        side,
        trial,
        rps,
        requests,
        failures,
        wall,
        cpu,
        metrics_rps=counted / span if span > 0 else None,
        metrics_requests=int(counted),
        cpu_warning=cpu_warned(lp.log_path),
    )
    return s.read_marks(workdir / "marks.jsonl") if not workers else s


WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b")
WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def run_wrk(
    url: str, args: argparse.Namespace, workdir: Path, trial: int, seconds: float
) -> Sample:
    conns = max(args.users, args.wrk_threads)
    cmd = ["wrk", "-t", str(args.wrk_threads), "-c", str(conns), "-d", f"{seconds:g}s"]
    cmd += ["--timeout", "5s", f"{url}/health"]
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
    cpu = children_cpu() - cpu0
    return Sample("wrk", trial, float(m.group(1)), int(total.group(1)), failures, wall, cpu)


def run_side(
    side: str, url: str, args: argparse.Namespace, workdir: Path, trial: int, mine: str
) -> Sample:
    workdir.mkdir(parents=True)
    others, before = len(other_harness_runs(mine)), cpu_times()
    if side in ("raw", "entry"):
        s = run_raw(url, args, workdir, trial, side=side)
    elif side == "harness":
        s = run_harness(url, args, workdir, trial)
    else:
        s = run_wrk(url, args, workdir, trial, args.wrk_seconds)
    s.machine_busy, s.other_runs = busy_between(before, cpu_times()), others
    busy = fmt((s.machine_busy or 0) * 100, ".0f")
    if w := s.window:
        per = 1000.0 / max(1, w["requests"])
        say(
            f"  steady window: user {1e3 * w['user'] * per:.0f} + sys {1e3 * w['sys'] * per:.0f} "
            f"ms/1k req, switches per 1k req: voluntary {w['voluntary_switches'] * per:.0f}, "
            f"involuntary {w['involuntary_switches'] * per:.0f}"
        )
    extra = f", metrics {s.metrics_rps:.0f} req/s" if s.metrics_rps is not None else ""
    say(
        f"  {side}: {s.rps:.1f} req/s, {s.failures}/{s.requests} failed{extra}, "
        f"CPU {fmt(s.cpu_ms_per_1k, '.0f')} ms/1k req (steady {fmt(s.steady_cpu_ms_per_1k, '.0f')}, "
        f"startup {fmt(s.startup_cpu_s, '.2f')} s); machine {busy}% busy, {others} other run(s)"
    )
    return s


def check_url(url: str) -> None:
    try:
        r = httpx.get(f"{url}/health", timeout=5.0)
    except httpx.HTTPError as exc:
        raise BenchError(f"{url}/health unreachable: {exc}") from None
    if r.status_code != 200:
        raise BenchError(f"{url}/health answered {r.status_code}")


def mmm(xs: list[float]) -> dict[str, float] | None:
    return _common.mmm(xs) if xs else None


def summarize(samples: list[Sample], n_pairs: int) -> dict[str, Any]:
    def of(side: str, i: int) -> Sample | None:
        return next((x for x in samples if x.side == side and x.trial == i), None)

    def paired(a: str, b: str, key: str) -> list[float]:
        out = []
        for i in range(n_pairs):
            x, y = of(a, i), of(b, i)
            top, bottom = (getattr(x, key), getattr(y, key)) if x and y else (None, None)
            if top is not None and bottom:
                out.append(top / bottom)
        return out

    sides = ("raw", "harness", "entry", "wrk")
    pairs = {  # in the order they are printed: harness/raw req/s last
        "entry/raw steady cpu_per_request": paired("entry", "raw", "steady_cpu_ms_per_1k"),
        "harness/entry steady cpu_per_request": paired("harness", "entry", "steady_cpu_ms_per_1k"),
        "raw/wrk rps": paired("raw", "wrk", "rps"),
        "harness/wrk rps": paired("harness", "wrk", "rps"),
        "harness/raw cpu_per_request": paired("harness", "raw", "cpu_ms_per_1k"),
        "harness/raw steady cpu_per_request": paired("harness", "raw", "steady_cpu_ms_per_1k"),
        "harness/raw rps": paired("harness", "raw", "rps"),
    }
    return {
        "rps": {s: mmm([x.rps for x in samples if x.side == s]) for s in sides},
        "cpu_ms_per_1k": {
            s: mmm([c for x in samples if x.side == s and (c := x.cpu_ms_per_1k) is not None])
            for s in sides
        },
        "steady_cpu_ms_per_1k": {
            s: mmm([c for x in samples if x.side == s and (c := x.steady_cpu_ms_per_1k)])
            for s in sides[:3]
        },
        "steady_window_per_1k_requests": {
            s: {
                k: mmm([1000 * w[k] / w["requests"] for w in ws])
                for k in ("user", "sys", "voluntary_switches", "involuntary_switches")
            }
            for s in sides[:3]
            if (
                ws := [
                    x.window for x in samples if x.side == s and x.window and x.window["requests"]
                ]
            )
        },
        "startup_cpu_s": {
            s: mmm([c for x in samples if x.side == s and (c := x.startup_cpu_s) is not None])
            for s in sides[:3]
        },
        "ratios": {name: mmm(xs) for name, xs in pairs.items() if xs},
        "paired": {name: xs for name, xs in pairs.items() if xs},
    }


def profile(url: str, args: argparse.Namespace, tmp: Path, stamp: str) -> dict[str, Any]:
    """One raw and one harness run of --profile seconds with py-spy attached."""
    out: dict[str, Any] = {}
    prof = argparse.Namespace(**{**vars(args), "seconds": args.profile})
    for side in ("raw", "harness"):
        say(f"profile: {side} under py-spy ({args.profile}s)")
        workdir = tmp / f"profile-{side}"
        workdir.mkdir(parents=True)
        spy = BENCH / "results" / f"load-profile-{stamp}-{side}.txt"
        spy.parent.mkdir(parents=True, exist_ok=True)
        run = run_raw if side == "raw" else run_harness
        s = run(url, prof, workdir, -1, spy=spy)
        out[side] = _pyspy.summarize(spy, s.window_requests or 0) | {"rps": s.rps}
        p = out[side]
        console.print(
            f"[bold]{side}[/]: {p['samples']} samples, {p['samples_per_1k_requests']} per 1k requests, "
            f"harness plugin code {p['harness_plugin_inclusive_pct']}% of samples inclusive, "
            f"{p['harness_plugin_own_pct']}% its own (Locust's request it wraps aside)"
        )
        for name, pct in p["top_self_pct"]:
            console.print(f"  self {pct:5.1f}%  {name}")
        for name, pct in p["harness_own_by_function_pct"]:
            console.print(f"  own  {pct:5.1f}%  {name}")
    return out


def report(summary: dict[str, Any], note: str) -> bool:
    for side in ("raw", "harness", "entry", "wrk"):
        r, c = summary["rps"][side], summary["cpu_ms_per_1k"][side]
        st = (summary["steady_cpu_ms_per_1k"].get(side) or {}).get("median")
        up = (summary["startup_cpu_s"].get(side) or {}).get("median")
        if r:
            console.print(
                f"{side:8} req/s min {r['min']:.0f} median {r['median']:.0f} max {r['max']:.0f}; "
                f"CPU ms / 1k req median {fmt(c and c['median'], '.1f')} (steady window "
                f"{fmt(st, '.1f')}), CPU at test start {fmt(up, '.2f')} s"
            )
        if w := summary["steady_window_per_1k_requests"].get(side):
            console.print(
                f"{'':8} steady window per 1k req (medians): user {1e3 * w['user']['median']:.0f} "
                f"ms, sys {1e3 * w['sys']['median']:.0f} ms, voluntary switches "
                f"{w['voluntary_switches']['median']:.0f}, involuntary "
                f"{w['involuntary_switches']['median']:.0f}"
            )
    console.print(f"[yellow]note:[/] {note}")
    met = True
    for name, v in summary["ratios"].items():
        goal, ok = "", None
        if v and name == "harness/raw rps":
            goal, ok = f">= {GOAL_RPS}", v["median"] >= GOAL_RPS
        elif v and name.startswith("harness/raw") and "cpu" in name:
            goal, ok = f"<= {GOAL_CPU}", v["median"] <= GOAL_CPU
        met = met and ok is not False
        _common.ratio_last(name, summary["paired"][name], goal, ok)
    return met


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python bench/load.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--pairs", type=int, default=5, help="raw/harness pairs (default 5)")
    p.add_argument("--seconds", type=int, default=15, help="each Locust side (default 15)")
    p.add_argument("--users", type=int, default=20, help="Locust users and wrk connections (20)")
    p.add_argument("--wrk-seconds", type=float, default=8.0, help="wrk after each pair (8)")
    p.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of wrk first, not counted")
    p.add_argument("--pause", type=float, default=1.0, help="seconds between two sides")
    p.add_argument(
        "--control",
        action="store_true",
        help="a third side per pair: the harness's entry point with the plugin off (entry)",
    )
    p.add_argument("--profile", type=int, default=0, help="seconds of py-spy runs (0: none)")
    p.add_argument("--topology", type=Path, default=TOPOLOGY, help="default %(default)s")
    a = p.parse_args(argv)
    if a.seconds < 2 or a.users < 1 or a.pairs < 1 or a.wrk_threads < 1 or a.wrk_seconds < 1:
        p.error("--seconds >= 2, --wrk-seconds >= 1, --users, --pairs, --wrk-threads >= 1")
    a.topology = a.topology.resolve()
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    install_sigterm()
    info = machine()
    samples: list[Sample] = []
    started, stamp = time.time(), time.strftime("%Y%m%d-%H%M%S")
    run_id, prof = "", None
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-load-") as tmpd,
            kept_stack(args.topology, Path(tmpd) / "runs") as run,
        ):
            tmp = Path(tmpd)
            run_id, url = run.run_id, run.plan.load_url
            check_url(url)
            if args.warmup > 0:
                say(f"warm-up: {args.warmup:g}s of wrk through {url}")
                (tmp / "warmup").mkdir()
                run_wrk(url, args, tmp / "warmup", -1, args.warmup)
            for i in range(args.pairs):
                sides = ("raw", "harness", "entry") if args.control else ("raw", "harness")
                order = sides if i % 2 == 0 else sides[::-1]
                for side in (*order, "wrk"):
                    say(f"pair {i + 1}/{args.pairs}: {side}")
                    samples.append(run_side(side, url, args, tmp / f"p{i}-{side}", i, run_id))
                    time.sleep(args.pause)
            if args.profile:
                prof = profile(url, args, tmp, stamp)
    except (BenchError, HarnessError, DockerException) as exc:
        console.print(f"[red]bench/load could not measure:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: stack torn down")
        return 2
    summary = summarize(samples, args.pairs)
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    note = busy_note(info)
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
            "profile": prof,
            **summary,
        },
    )
    console.print(f"result: {path.relative_to(ROOT)}")
    return 0 if report(summary, note) else 1


if __name__ == "__main__":
    sys.exit(main())
