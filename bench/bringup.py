"""Bring-up and teardown of ha.yaml: `harness up` + `harness down` against `docker-compose up -d`
+ polling every container's healthcheck + `docker-compose down`, on the same stack (the Compose
project `harness export compose` writes from the same plan). Interleaved pairs, alternating
which side goes first; min/median/max per side, the median of the paired ratios last.

Where harness time goes is measured in-process by timing the runtime's own steps (network,
each container's create+copy+start, each readiness wait, the level barriers) and the run's
phases (validate, build = image cache check, up, baseline = Prometheus sees every target).

    python bench/bringup.py                 # 5 pairs
    python bench/bringup.py --pairs 3

Run it under the Docker lock on a shared machine: flock /tmp/docker.lock python bench/bringup.py
Exit 0: goals met (up <= 0.7 x Compose, down <= 3 s); 1: measured, missed; 2: could not measure.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _common import ROOT, BenchError, console, install_sigterm, machine, say, write_result

TOPOLOGY = ROOT / "topologies" / "ha.yaml"
UP_GOAL, DOWN_GOAL = 0.7, 3.0


class Timings:
    """Seconds per step, summed over containers (steps of one level overlap in threads)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.lock = threading.Lock()

    def add(self, key: str, seconds: float) -> None:
        with self.lock:
            self.sums[key] += seconds


@contextmanager
def instrumented(t: Timings) -> Iterator[None]:
    """Time the runtime's steps by wrapping them (restored on the way out)."""
    import harness.run.core as core
    import harness.runtime.stack as stack

    orig = (core.create_network, stack.Stack._create, stack.wait_ready, stack.Stack.up)
    orig_phase = {
        name: getattr(core.Run, name) for name in ("validate", "build", "up", "baseline_check")
    }

    def timed(key: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t0 = time.monotonic()
            try:
                return fn(*a, **k)
            finally:
                t.add(key, time.monotonic() - t0)

        return wrapper

    core.create_network = timed("up: network", orig[0])
    stack.Stack._create = timed("up: create+copy (sum, all at once)", orig[1])  # type: ignore[method-assign]
    stack.wait_ready = timed("up: readiness waits (sum)", orig[2])
    stack.Stack.up = timed("up: containers, level by level (wall)", orig[3])  # type: ignore[method-assign]
    for name, fn in orig_phase.items():
        setattr(core.Run, name, timed(f"phase {name}", fn))
    try:
        yield
    finally:
        core.create_network, stack.Stack._create, stack.wait_ready, stack.Stack.up = orig  # type: ignore[method-assign]
        for name, fn in orig_phase.items():
            setattr(core.Run, name, fn)


def harness_side(runs_dir: Path) -> dict[str, Any]:
    from harness.runner import Run
    from harness.runtime.stack import teardown

    t = Timings()
    run_id = None
    try:
        with instrumented(t):
            t0 = time.monotonic()
            run = Run(TOPOLOGY, runs_dir=runs_dir, keep=True, say=lambda m: None, judged=False)
            run_id = run.run_id
            res = run.bring_up()
            up = time.monotonic() - t0
        if res.exit_code != 0:
            raise BenchError(f"harness up failed (exit {res.exit_code}): {res.error}")
        t0 = time.monotonic()
        teardown(run_id)
        down = time.monotonic() - t0
        run_id = None
    finally:
        if run_id:
            teardown(run_id)
    return {"up": up, "down": down, "breakdown": dict(t.sums)}


def _healthy(run_id: str, expected: int) -> bool:
    from harness.runtime.docker import client

    conts = client().api.containers(filters={"label": f"io.harness.run={run_id}"})
    if len(conts) < expected:
        return False
    return all("(healthy)" in c["Status"] for c in conts)


def compose_side(workdir: Path) -> dict[str, Any]:
    from harness.export import export_compose
    from harness.runtime.stack import free_subnets, teardown

    exe = shutil.which("docker-compose")
    if exe is None:
        raise BenchError("docker-compose is not installed (apt-get install -y docker-compose)")
    out = Path(tempfile.mkdtemp(prefix="compose-", dir=workdir))
    s = export_compose(TOPOLOGY, out, subnet=free_subnets()[0])
    project = "hb" + s["run_id"].replace("-", "")
    expected = len(
        __import__("yaml").safe_load((out / "docker-compose.yml").read_text())["services"]
    )
    try:
        t0 = time.monotonic()
        up = subprocess.run(
            [exe, "-p", project, "up", "-d"], cwd=out, capture_output=True, text=True
        )
        if up.returncode != 0:
            raise BenchError(f"docker-compose up failed: {up.stderr[-500:]}")
        t_started = time.monotonic() - t0
        deadline = time.monotonic() + 180
        while not _healthy(s["run_id"], expected):
            if time.monotonic() > deadline:
                raise BenchError("the Compose stack did not become healthy in 180 s")
            time.sleep(0.25)
        up_s = time.monotonic() - t0
        # What `harness up` also waits for (its baseline): the stack answers through the VIP.
        while True:
            try:
                if httpx.get(f"{s['load_url']}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("the Compose stack did not answer through its VIP in 180 s")
            time.sleep(0.1)
        vip_s = time.monotonic() - t0
        t0 = time.monotonic()
        down = subprocess.run(
            [exe, "-p", project, "down", "-v", "-t", "0"], cwd=out, capture_output=True, text=True
        )
        down_s = time.monotonic() - t0
        if down.returncode != 0:
            raise BenchError(f"docker-compose down failed: {down.stderr[-500:]}")
    finally:
        teardown(s["run_id"])  # whatever is left, by the export's run label
    return {
        "up": up_s,
        "up_vip": vip_s,
        "down": down_s,
        "breakdown": {"compose up -d returned": t_started},
    }


def stats(xs: list[float]) -> dict[str, float]:
    ys = sorted(xs)
    return {
        "min": ys[0],
        "median": ys[len(ys) // 2]
        if len(ys) % 2
        else (ys[len(ys) // 2 - 1] + ys[len(ys) // 2]) / 2,
        "max": ys[-1],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--pairs", type=int, default=5)
    args = p.parse_args(argv)
    install_sigterm()
    info = machine()
    from harness.runner import build_images
    from harness.spec.loader import load_topology

    say("building/checking images (not timed)")
    build_images(load_topology(TOPOLOGY, require_assertions=False), lambda m: None, TOPOLOGY.parent)
    pairs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-bringup-") as tmp:
            for i in range(args.pairs):
                order = ["harness", "compose"] if i % 2 == 0 else ["compose", "harness"]
                pair: dict[str, Any] = {"order": order}
                for side in order:
                    pair[side] = (
                        harness_side(Path(tmp) / "runs")
                        if side == "harness"
                        else compose_side(Path(tmp))
                    )
                    say(
                        f"pair {i + 1} {side}: up {pair[side]['up']:.1f}s, down {pair[side]['down']:.1f}s"
                    )
                pair["up_ratio"] = pair["harness"]["up"] / pair["compose"]["up"]
                pair["up_ratio_vip"] = pair["harness"]["up"] / pair["compose"]["up_vip"]
                pairs.append(pair)
    except (BenchError, KeyboardInterrupt) as exc:
        console.print(f"[red]could not measure:[/] {exc}")
        return 2
    result: dict[str, Any] = {
        "machine": info,
        "topology": str(TOPOLOGY.relative_to(ROOT)),
        "pairs": pairs,
    }
    for side in ("harness", "compose"):
        for what in ("up", "down"):
            result[f"{side}_{what}"] = stats([p[side][what] for p in pairs])
    keys = sorted({k for p in pairs for k in p["harness"]["breakdown"]})
    result["harness_breakdown_median"] = {
        k: stats([p["harness"]["breakdown"].get(k, 0.0) for p in pairs])["median"] for k in keys
    }
    result["up_ratio"] = stats([p["up_ratio"] for p in pairs])
    result["up_ratio_vip"] = stats([p["up_ratio_vip"] for p in pairs])
    result["compose_up_vip"] = stats([p["compose"]["up_vip"] for p in pairs])
    result["goals"] = {"up_ratio_max": UP_GOAL, "harness_down_max_s": DOWN_GOAL}
    console.print("\nwhere harness up's time goes (median s):")
    for k, v in result["harness_breakdown_median"].items():
        console.print(f"  {k:45s} {v:6.2f}")
    for side in ("harness", "compose"):
        for what in ("up", "down"):
            s = result[f"{side}_{what}"]
            console.print(
                f"{side:8s} {what:5s} min {s['min']:.2f}  median {s['median']:.2f}  max {s['max']:.2f} s"
            )
    s = result["compose_up_vip"]
    console.print(
        f"compose up+VIP min {s['min']:.2f}  median {s['median']:.2f}  max {s['max']:.2f} s "
        f"(until the stack answers through its Keepalived VIP, as harness up's baseline checks)"
    )
    v = result["up_ratio_vip"]
    console.print(
        f"harness up / (compose up + answering through the VIP): {v['median']:.2f} "
        f"(min {v['min']:.2f}, max {v['max']:.2f})"
    )
    path = write_result("bringup", result)
    r = result["up_ratio"]
    met = r["median"] <= UP_GOAL and result["harness_down"]["median"] <= DOWN_GOAL
    console.print(f"results: {path.relative_to(ROOT)}")
    console.print(
        f"harness up / compose up (median of {len(pairs)} paired ratios): {r['median']:.2f} "
        f"(min {r['min']:.2f}, max {r['max']:.2f}; goal <= {UP_GOAL}); harness down median "
        f"{result['harness_down']['median']:.2f} s (goal <= {DOWN_GOAL})"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
