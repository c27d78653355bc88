"""Requests per second through one kept-up stack with 1, 2 and 4 Locust worker processes, against
a single Locust process, to price load from many processes (issue 16, ask 2).

  single   the harness's Locust process alone (no master)
  w1 w2 w4 the harness's master + 1, 2 or 4 worker processes (the local form of what
           `harness worker` does from other machines)

Each side runs bench/locustfiles/health.py (FastHttpUser, no wait, `GET /health`) for
--seconds with --users users, through bench/load.py's `run_harness` (the runner's own
LocustProcess; req/s from Locust's CSV). Rounds alternate the order of the sides (forwards,
then backwards) to cancel drift; a side's figure is the median over --rounds, and its ratio is
the median over rounds of side/single within the round.

On this 2-core machine the generator, the stack and everything else share the same cores:
more worker processes cannot add CPU, so the ratios say what the extra processes cost here,
not what more machines would add.

Exit code: 0 measured, 2 could not measure. Results: a table and bench/results/workers-*.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from _common import (
    ROOT,
    BenchError,
    console,
    fmt,
    install_sigterm,
    kept_stack,
    machine,
    median,
    say,
    write_result,
)
from docker.errors import DockerException
from load import check_url, run_harness
from rich.table import Table

from harness.errors import HarnessError

SIDES = {"single": 0, "w1": 1, "w2": 2, "w4": 4}
TOPOLOGY = ROOT / "topologies" / "ha.yaml"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python bench/workers.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seconds", type=int, default=15, help="length of each side's run (default 15)")
    p.add_argument("--users", type=int, default=40, help="Locust users (default 40)")
    p.add_argument(
        "--rounds", type=int, default=3, help="rounds of every side (default 3, at least 3)"
    )
    p.add_argument("--pause", type=float, default=2.0, help="seconds between two sides (default 2)")
    p.add_argument("--topology", type=Path, default=TOPOLOGY, help="stack (default %(default)s)")
    a = p.parse_args(argv)
    if a.rounds < 3 or a.seconds < 2 or a.users < 4:
        p.error("--rounds >= 3, --seconds >= 2, --users >= 4")
    a.topology = a.topology.resolve()
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    install_sigterm()
    info = machine()
    rows: list[dict[str, object]] = []
    started = time.time()
    run_id = ""
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-workers-") as tmpd,
            kept_stack(args.topology, Path(tmpd) / "runs") as run,
        ):
            run_id, url = run.run_id, run.plan.load_url
            check_url(url)
            for rnd in range(args.rounds):
                order = list(SIDES) if rnd % 2 == 0 else list(reversed(SIDES))
                for side in order:
                    say(
                        f"round {rnd + 1}/{args.rounds}: {side} ({args.users} users, {args.seconds}s)"
                    )
                    workdir = Path(tmpd) / f"r{rnd}-{side}"
                    workdir.mkdir(parents=True)
                    s = run_harness(url, args, workdir, rnd, SIDES[side])
                    rows.append({**asdict(s), "side": side, "round": rnd, "workers": SIDES[side]})
                    say(f"  {side}: {s.rps:.1f} req/s, {s.failures}/{s.requests} failed")
                    time.sleep(args.pause)
    except (BenchError, HarnessError, DockerException) as exc:
        console.print(f"[red]bench/workers could not measure:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: stack torn down")
        return 2
    rps = {side: [float(r["rps"]) for r in rows if r["side"] == side] for side in SIDES}  # type: ignore[arg-type]
    ratio = {}
    for side in SIDES:
        per_round = []
        for rnd in range(args.rounds):
            a = [float(r["rps"]) for r in rows if r["side"] == side and r["round"] == rnd]  # type: ignore[arg-type]
            b = [float(r["rps"]) for r in rows if r["side"] == "single" and r["round"] == rnd]  # type: ignore[arg-type]
            if a and b and b[0] > 0:
                per_round.append(a[0] / b[0])
        ratio[side] = median(per_round)
    table = Table(title=f"req/s through {args.topology.name}, median of {args.rounds} rounds")
    for col in ("side", "worker processes", "req/s (median)", "all rounds", "ratio to single"):
        table.add_column(col)
    for side, n in SIDES.items():
        table.add_row(
            side,
            str(n),
            fmt(median(rps[side]), ".0f"),
            ", ".join(f"{x:.0f}" for x in rps[side]),
            fmt(ratio[side], ".2f"),
        )
    console.print(table)
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = write_result(
        "workers",
        {
            "bench": "workers",
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
            "samples": rows,
            "median_rps": {s: median(v) for s, v in rps.items()},
            "ratio_to_single": ratio,
        },
    )
    console.print(f"result: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
