"""Bring-up and teardown of ha.yaml: `harness up` + `harness down` against `docker-compose up -d`
+ polling every container's healthcheck + `docker-compose down`, on the same stack (the Compose
project `harness export compose` writes from the same plan). Interleaved pairs, alternating
which side goes first; min/median/max per side, the median of the paired ratios last.

Where harness time goes comes from what the run journals (public data, no patching): its
phases (build = image cache check, up, baseline = Prometheus sees every backend UP, the VIP is on
its first LB and 5 requests through it succeed), the `up` phase's own timings (network, create,
each level until its last container is ready), and when Prometheus first scraped (it scrapes
nothing for its first ~5 s).

    python bench/bringup.py                 # 5 pairs
    python bench/bringup.py --repeat 3      # (or --pairs 3)

Run it under the Docker lock on a shared machine: flock /tmp/docker.lock python bench/bringup.py
Exit 0: goals met (up <= 0.7 x Compose, down <= 3 s); 1: measured, missed; 2: could not measure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import (
    ROOT,
    BenchError,
    console,
    fmt_mmm,
    install_sigterm,
    machine,
    mmm,
    parser,
    ratio_last,
    say,
    shown,
    write_result,
)

TOPOLOGY = ROOT / "topologies" / "ha.yaml"
UP_GOAL, DOWN_GOAL = 0.7, 3.0


def first_scrape(run: Any) -> dict[str, float]:
    """When Prometheus first scraped anything, against when its container started: Prometheus
    2.42 hands its static targets to the scrape loops on a 5 s ticker, so nothing is scraped
    in its first ~5 s, and the baseline (Prometheus sees every backend UP) waits for it."""
    from datetime import datetime

    assert run.prom is not None and run.stack is not None
    rows = run.prom.query(f'up{{run="{run.run_id}"}}[5m]')
    first = min((float(v[0]) for r in rows for v in r.get("values", [])), default=None)
    prom = next(c for c in run.plan.containers if c.instance == "prometheus")
    cont = run.stack.containers[prom.instance]
    cont.reload()
    started = datetime.fromisoformat(cont.attrs["State"]["StartedAt"][:26] + "+00:00").timestamp()
    up = next(p for p in run.journal.data["phases"] if p["name"] == "up")
    out = {"prometheus started after up began": started - up["started_at"]}
    if first is not None:
        out["prometheus first scrape after its start"] = first - started
        out["prometheus first scrape after up ended"] = first - up["ended_at"]
    return out


def harness_side(runs_dir: Path) -> dict[str, Any]:
    """`harness up` through the public API (Run.bring_up), its time split with what the run
    journals: the phases, and the `up` phase's own timings (network, create, each level)."""
    from harness.runner import Run
    from harness.runtime.stack import teardown

    run_id = None
    try:
        t0 = time.monotonic()
        run = Run(TOPOLOGY, runs_dir=runs_dir, keep=True, say=lambda m: None, judged=False)
        validate = time.monotonic() - t0
        run_id = run.run_id
        res = run.bring_up()
        up = time.monotonic() - t0
        if res.exit_code != 0:
            raise BenchError(f"harness up failed (exit {res.exit_code}): {res.error}")
        breakdown = {"validate (Run())": validate}
        for ph in run.journal.data["phases"]:
            breakdown[f"phase {ph['name']}"] = ph["ended_at"] - ph["started_at"]
            for k, v in (ph.get("timings") or {}).items():
                if not k.startswith(("start ", "ready ")):
                    breakdown[f"  up: {k}"] = v
        breakdown.update({f"  {k}": v for k, v in first_scrape(run).items()})
        containers = {
            k: v
            for ph in run.journal.data["phases"]
            for k, v in (ph.get("timings") or {}).items()
            if k.startswith(("start ", "ready "))
        }
        t0 = time.monotonic()
        teardown(run_id)
        down = time.monotonic() - t0
        run_id = None
    finally:
        if run_id:
            teardown(run_id)
    return {"up": up, "down": down, "breakdown": breakdown, "containers": containers}


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


def main(argv: list[str] | None = None) -> int:
    ap = parser("bringup", __doc__, repeat=5, what="interleaved pairs")
    ap.add_argument("--pairs", dest="repeat", type=int, help="the same as --repeat")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat >= 1")
    install_sigterm()
    info = machine()
    from harness.plan.check import load_topology  # the spec and the plan, as a run validates
    from harness.runner import build_images

    say("building/checking images (not timed)")
    build_images(load_topology(TOPOLOGY, require_assertions=False), lambda m: None, TOPOLOGY.parent)
    pairs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-bringup-") as tmp:
            for i in range(args.repeat):
                # not timed; a no-op unless an image context changed meanwhile (a shared tree)
                build_images(
                    load_topology(TOPOLOGY, require_assertions=False),
                    lambda m: None,
                    TOPOLOGY.parent,
                )
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
            result[f"{side}_{what}"] = mmm([p[side][what] for p in pairs])
    keys: list[str] = []
    for p in pairs:
        keys += [k for k in p["harness"]["breakdown"] if k not in keys]
    result["harness_breakdown_median"] = {
        k: mmm([p["harness"]["breakdown"][k] for p in pairs if k in p["harness"]["breakdown"]])[
            "median"
        ]
        for k in keys
    }
    result["up_ratio"] = mmm([p["up_ratio"] for p in pairs])
    result["up_ratio_vip"] = mmm([p["up_ratio_vip"] for p in pairs])
    result["compose_up_vip"] = mmm([p["compose"]["up_vip"] for p in pairs])
    result["goals"] = {"up_ratio_max": UP_GOAL, "harness_down_max_s": DOWN_GOAL}
    path = write_result("bringup", result)
    console.print("\nwhere harness up's time goes (median s; indented: within the phase above):")
    for k, v in result["harness_breakdown_median"].items():
        console.print(f"  {k:55s} {v:6.2f}")
    for side in ("harness", "compose"):
        for what in ("up", "down"):
            console.print(f"{side:8s} {what:5s} {fmt_mmm(result[f'{side}_{what}'], '.2f', ' s')}")
    console.print(
        f"compose up+VIP {fmt_mmm(result['compose_up_vip'], '.2f', ' s')} (until the stack "
        "answers through its Keepalived VIP, as harness up's baseline checks)"
    )
    console.print(f"results: {shown(path)}")
    down_met = result["harness_down"]["median"] <= DOWN_GOAL
    console.print(
        f"harness down {fmt_mmm(result['harness_down'], '.2f', ' s')}: goal <= {DOWN_GOAL:g} s "
        + ("[green]met[/]" if down_met else "[red]missed[/]")
    )
    ratio_last(
        "harness up / (compose up -d + healthy + answering through the VIP)",
        [p["up_ratio_vip"] for p in pairs],
    )
    up_met = result["up_ratio"]["median"] <= UP_GOAL
    ratio_last(
        "harness up / (compose up -d + healthy)",
        [p["up_ratio"] for p in pairs],
        goal=f"<= {UP_GOAL}",
        met=up_met,
    )
    return 0 if up_met and down_met else 1


if __name__ == "__main__":
    sys.exit(main())
