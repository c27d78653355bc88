"""Requests per second through one kept-up stack with 1, 2 and 4 Locust worker processes, against
a single Locust process, to price load from many processes (issue 16, ask 2).

  single   the harness's Locust process alone (no master)
  w1 w2 w4 the harness's master + 1, 2 or 4 worker processes (the local form of what
           `harness worker` does from other machines)

Each side runs bench/locustfiles/health.py (FastHttpUser, no wait, `GET /health`) for
--seconds with --users users, through bench/load.py's `run_harness` (the runner's own
LocustProcess; req/s from Locust's CSV). Rounds are interleaved: every round runs every side
once, forwards in even rounds and backwards in odd ones, so drift hits each side alike (an
uncounted --warmup run goes first: the first side after bring-up ran slower). A side
is quoted as min/median/max over the rounds; its ratio to a single process is taken within
each round (side / single of the same round) and quoted the same way, last.

Where the CPU went, per side, in cores (CPU seconds / wall seconds of the side): the
generator's processes (master + workers), the stack's containers (their cgroups), the whole
machine (/proc/stat) and the rest (machine - generator - stack: this script, the Docker
engine, anything else that ran meanwhile); and CPU milliseconds per request served, for the
generator and the stack. On a 2-core machine the generator and the stack share the same cores:
when the machine is already busy, more worker processes cannot add CPU, only split it.

    flock /tmp/docker.lock .venv/bin/python bench/workers.py            # 5 rounds
    flock /tmp/docker.lock .venv/bin/python bench/workers.py --rounds 7

Exit code: 0 measured, 2 could not measure. Results: tables and bench/results/workers-*.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    BenchError,
    busy_between,
    console,
    cpu_times,
    install_sigterm,
    kept_stack,
    machine,
    mmm,
    paired_ratios,
    parser,
    ratio_last,
    say,
    shown,
    sides_table,
    write_result,
)
from docker.errors import DockerException
from load import check_url, run_harness

from harness.errors import HarnessError

SIDES = {"single": 0, "w1": 1, "w2": 2, "w4": 4}
TOPOLOGY = ROOT / "topologies" / "ha.yaml"
CGROUP_FILES = (  # cgroup v1 (cgroupfs driver), v2 with the systemd driver, v2 cgroupfs
    ("/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage", 1e-9),
    ("/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat", 1e-6),
    ("/sys/fs/cgroup/docker/{id}/cpu.stat", 1e-6),
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = parser("workers", __doc__)
    p.add_argument("--seconds", type=int, default=15, help="length of each side's run (default 15)")
    p.add_argument("--users", type=int, default=40, help="Locust users (default 40)")
    p.add_argument("--rounds", type=int, default=5, help="rounds of every side (default 5)")
    p.add_argument("--pause", type=float, default=2.0, help="seconds between two sides (default 2)")
    p.add_argument(
        "--warmup", type=int, default=8, help="seconds of load before round 1, not counted (8)"
    )
    p.add_argument("--topology", type=Path, default=TOPOLOGY, help="stack (default %(default)s)")
    a = p.parse_args(argv)
    if a.rounds < 5 or a.seconds < 2 or a.users < 4:
        p.error("--rounds >= 5, --seconds >= 2, --users >= 4")
    a.topology = a.topology.resolve()
    return a


def container_ids(run_id: str) -> list[str]:
    from harness.runtime import labels
    from harness.runtime.docker import client

    return [c.id for c in client().containers.list(filters={"label": f"{labels.RUN}={run_id}"})]


def stack_cpu(ids: list[str]) -> float | None:
    """CPU seconds the stack's containers used so far (their cgroups' counters); None when
    this machine keeps them somewhere else."""
    total = 0.0
    for cid in ids:
        for pattern, unit in CGROUP_FILES:
            try:
                text = Path(pattern.format(id=cid)).read_text()
            except OSError:
                continue
            if text.startswith("usage_usec"):
                text = text.split()[1]
            total += int(text.split()[0]) * unit
            break
        else:
            return None
    return total


def one_side(
    side: str, rnd: int, url: str, ids: list[str], args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    workdir = tmp / f"r{rnd}-{side}"
    workdir.mkdir(parents=True)
    stack0, machine0 = stack_cpu(ids), cpu_times()
    s = run_harness(url, args, workdir, rnd, SIDES[side])
    stack1, busy = stack_cpu(ids), busy_between(machine0, cpu_times())
    cores = os.cpu_count() or 1
    row: dict[str, Any] = {**asdict(s), "side": side, "round": rnd, "workers": SIDES[side]}
    stack_s = stack1 - stack0 if stack0 is not None and stack1 is not None else None
    row["generator_cores"] = s.cpu_s / s.wall_s
    row["stack_cores"] = stack_s / s.wall_s if stack_s is not None else None
    per_request = 1000 / s.requests if s.requests else None  # CPU ms per request served
    row["generator_ms_per_request"] = s.cpu_s * per_request if per_request else None
    row["stack_ms_per_request"] = stack_s * per_request if stack_s and per_request else None
    row["machine_cores"] = busy * cores if busy is not None else None
    row["other_cores"] = (  # whatever else ran meanwhile: the harness, other users' work
        row["machine_cores"] - row["generator_cores"] - row["stack_cores"]
        if row["machine_cores"] is not None and row["stack_cores"] is not None
        else None
    )
    say(
        f"  {side}: {s.rps:.1f} req/s, {s.failures}/{s.requests} failed; cores: generator "
        f"{row['generator_cores']:.2f}, stack {_f(row['stack_cores'])}, "
        f"other {_f(row['other_cores'])}, machine {_f(row['machine_cores'])} of {cores}"
    )
    return row


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def summary(rows: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    def of(side: str, key: str) -> list[float]:
        return [float(r[key]) for r in rows if r["side"] == side and r[key] is not None]

    by_round = {(r["side"], r["round"]): float(r["rps"]) for r in rows}

    def ratios(side: str) -> list[float]:  # within each round: side / single
        done = [n for n in range(rounds) if (side, n) in by_round and ("single", n) in by_round]
        return paired_ratios(
            [by_round[side, n] for n in done], [by_round["single", n] for n in done]
        )

    keys = (
        "rps",
        "generator_cores",
        "stack_cores",
        "other_cores",
        "machine_cores",
        "generator_ms_per_request",
        "stack_ms_per_request",
    )
    return {
        "sides": {
            side: {k: mmm(of(side, k)) if of(side, k) else None for k in keys} for side in SIDES
        },
        "ratio_to_single": {side: mmm(ratios(side)) for side in SIDES if side != "single"},
        "paired_ratios": {side: ratios(side) for side in SIDES if side != "single"},
    }


def report(rows: list[dict[str, Any]], summ: dict[str, Any], args: argparse.Namespace) -> None:
    def med(side: str, key: str) -> str:
        s = summ["sides"][side][key]
        return "-" if s is None else f"{s['median']:.2f}"

    extra = {
        side: {
            "req/s min-max": "{min:.0f}-{max:.0f}".format(**summ["sides"][side]["rps"]),
            "gen. cores": med(side, "generator_cores"),
            "stack cores": med(side, "stack_cores"),
            "other cores": med(side, "other_cores"),
            "machine cores": f"{med(side, 'machine_cores')} of {os.cpu_count()}",
            "CPU ms/req gen., stack": (
                f"{med(side, 'generator_ms_per_request')}, {med(side, 'stack_ms_per_request')}"
            ),
        }
        for side in SIDES
    }
    sides_table(
        f"req/s through {args.topology.name}, {args.users} users, {args.rounds} interleaved "
        "rounds (cores: medians)",
        {side: [float(r["rps"]) for r in rows if r["side"] == side] for side in SIDES},
        {side: (r or {}).get("median") for side, r in summ["ratio_to_single"].items()},
        unit="req/s",
        spec=".0f",
        extra=extra,
        ratio_to="single",
    )
    for side, xs in summ["paired_ratios"].items():
        ratio_last(f"{side} / single req/s, within each round", xs)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    install_sigterm()
    info = machine()
    rows: list[dict[str, Any]] = []
    started = time.time()
    run_id = ""
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-workers-") as tmpd,
            kept_stack(args.topology, Path(tmpd) / "runs") as run,
        ):
            run_id, url = run.run_id, run.plan.load_url
            check_url(url)
            ids = container_ids(run_id)
            say(f"warm-up: single for {args.warmup}s (not counted)")
            warm = argparse.Namespace(**{**vars(args), "seconds": args.warmup})
            one_side("single", -1, url, ids, warm, Path(tmpd))
            for rnd in range(args.rounds):
                order = list(SIDES) if rnd % 2 == 0 else list(reversed(SIDES))
                for side in order:
                    say(f"round {rnd + 1}/{args.rounds}: {side} ({args.users} users)")
                    rows.append(one_side(side, rnd, url, ids, args, Path(tmpd)))
                    time.sleep(args.pause)
    except (BenchError, HarnessError, DockerException) as exc:
        console.print(f"[red]bench/workers could not measure:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: stack torn down")
        return 2
    summ = summary(rows, args.rounds)
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = write_result(
        "workers",
        {
            "bench": "workers",
            "started_at": started,
            "ended_at": time.time(),
            "run_id": run_id,
            "topology": shown(args.topology),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": info,
            "samples": rows,
            **summ,
        },
    )
    console.print(f"result: {shown(path)}")
    report(rows, summ, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
