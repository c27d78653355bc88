"""From a fresh clone to the first verdict, with no harness image built: the time of each step
a new machine goes through, and their sum (issue 15, ask 5; goal <= 4 min on 2 cores).

  clone        git clone of this repository's HEAD into a temporary directory
  apt          what install.sh's apt-get would fetch on a machine without them (docker.io,
               mmdebstrap, debootstrap, iptables, python3-venv and what they pull in),
               downloaded into a private cache, then unpacked (dpkg-deb -x): apt's own
               configure step and starting dockerd are not timed (they are on a machine that
               has them already)
  venv         what install.sh does: python3 -m venv .venv, pip install uv, then uv pip
               install -e . (the harness and its dependencies; `--installer pip`: pip install
               -e . instead), with empty pip and uv caches, as on a new machine
  base         the base image bootstrapped (mmdebstrap, else debootstrap) and imported, under
               a private tag
  build        `harness images build` from the clone with HARNESS_IMAGE_REPO=harness-cold and
               HARNESS_BUILD_NOCACHE=1: every built-in image built from scratch (no layer
               cache, several at once as always), tagged beside the usual harness/* images
               instead of replacing them
  run          `harness run topologies/ha.yaml` with those images, until its verdict

The builds start FROM the engine's debian:bookworm-slim, which the base step re-creates
under its own tag (the same bootstrap, so the same content) and removes again. Everything this
script makes (the clone, the venv, the apt cache, the harness-cold/* images, the run) is
removed at the end, whatever happens.

Run it under the Docker lock on a shared machine (it holds the engine for minutes):
    flock /tmp/docker.lock python bench/cold.py
    flock /tmp/docker.lock python bench/cold.py --skip apt,venv   # only the Docker part

Exit 0: measured and the sum within the goal; 1: measured, missed; 2: could not measure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    BenchError,
    busy_note,
    console,
    install_sigterm,
    machine,
    parser,
    say,
    write_result,
)

GOAL_S = 240.0
REPO = "harness-cold"
STEPS = ("clone", "apt", "venv", "base", "build", "run")
APT_PACKAGES = ("docker.io", "mmdebstrap", "debootstrap", "iptables", "python3-venv")
VERDICTS = {0: "passed", 1: "assertion failed", 2: "inconclusive / error", 3: "invalid input"}


def sh(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(
        cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    if p.returncode != 0:
        tail = " | ".join((p.stdout + p.stderr).strip().splitlines()[-5:])
        raise BenchError(f"{' '.join(cmd[:4])} ... exited {p.returncode}: {tail}")
    return p.stdout


def apt(tmp: Path) -> None:
    cache = tmp / "apt"
    (cache / "partial").mkdir(parents=True)
    sh(
        [
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--download-only",
            "--reinstall",
            "--no-install-recommends",
            "-o",
            f"Dir::Cache::archives={cache}",
            *APT_PACKAGES,
        ]
    )
    root = tmp / "apt-root"
    for deb in sorted(cache.glob("*.deb")):
        sh(["dpkg-deb", "-x", str(deb), str(root)])


def venv(clone: Path, tmp: Path, installer: str) -> dict[str, Any]:
    """install.sh's venv step: uv when it can be had, else pip (a new machine: empty caches)."""
    env = {"PIP_CACHE_DIR": str(tmp / "pip-cache"), "UV_CACHE_DIR": str(tmp / "uv-cache")}
    py = str(clone / ".venv" / "bin" / "python")
    sh(["python3", "-m", "venv", ".venv"], cwd=clone)
    if installer == "uv":
        try:
            sh([py, "-m", "pip", "install", "-q", "uv"], clone, env)
            sh([py, "-m", "uv", "pip", "install", "-q", "--python", py, "-e", "."], clone, env)
            return {"installer": "uv"}
        except BenchError as exc:
            say(f"uv failed, pip instead: {exc}")
    sh([py, "-m", "pip", "install", "-q", "--upgrade", "pip"], clone, env)
    sh([py, "-m", "pip", "install", "-q", "-e", "."], clone, env)
    return {"installer": "pip"}


def run_step(
    step: str, tmp: Path, clone: Path, env: dict[str, str], installer: str
) -> dict[str, Any]:
    py = clone / ".venv" / "bin" / "python"
    harness = clone / ".venv" / "bin" / "harness"
    if step == "clone":
        sh(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)])
    elif step == "apt":
        apt(tmp)
    elif step == "venv":
        return venv(clone, tmp, installer)
    elif step == "base":
        code = (
            "from pathlib import Path; from harness.runtime import images as i; "
            "print(i.bootstrap_commands(Path('/nonexistent'))[0][0]); "
            f"i.bootstrap_base_image('{REPO}/debian:bookworm-slim', lambda m: None)"
        )
        out = sh([str(py if py.exists() else sys.executable), "-c", code], cwd=clone)
        return {"tool": out.split()[0]}
    elif step == "build":
        exe = str(harness if harness.exists() else ROOT / ".venv" / "bin" / "harness")
        sh([exe, "images", "build"], clone, env)
        from harness.runtime.images import DEFAULT_JOBS

        return {"jobs": env.get("HARNESS_BUILD_JOBS") or str(DEFAULT_JOBS)}
    elif step == "run":
        exe = str(harness if harness.exists() else ROOT / ".venv" / "bin" / "harness")
        p = subprocess.run(
            [exe, "run", "topologies/ha.yaml", "--runs-dir", str(tmp / "runs")],
            cwd=clone,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if p.returncode not in (0, 1):
            tail = " | ".join((p.stdout + p.stderr).strip().splitlines()[-5:])
            raise BenchError(f"harness run reached no verdict (exit {p.returncode}): {tail}")
        return {"exit_code": p.returncode, "verdict": VERDICTS.get(p.returncode)}
    return {}


def remove_cold_images() -> int:
    from harness.runtime.docker import client

    removed = 0
    for image in client().images.list():
        for tag in image.tags:
            if tag.startswith(f"{REPO}/"):
                client().images.remove(tag, force=True)
                removed += 1
    return removed


def main(argv: list[str] | None = None) -> int:
    ap = parser("cold", __doc__)
    ap.add_argument("--skip", default="", help=f"comma-separated steps not to time ({STEPS})")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument(
        "--installer", choices=("uv", "pip"), default="uv", help="the venv step's installer"
    )
    ap.add_argument("--jobs", type=int, help="images built at once (HARNESS_BUILD_JOBS)")
    args = ap.parse_args(argv)
    skip = {s for s in args.skip.split(",") if s}
    if skip - set(STEPS) or "clone" in skip:
        ap.error(f"--skip takes steps among {', '.join(STEPS[1:])}")
    install_sigterm()
    info = machine()
    env = {"HARNESS_IMAGE_REPO": REPO, "HARNESS_BUILD_NOCACHE": "1"}
    if args.jobs:
        env["HARNESS_BUILD_JOBS"] = str(args.jobs)
    steps: dict[str, dict[str, Any]] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-cold-"))
    clone = tmp / "harness"
    started = time.time()
    try:
        for step in STEPS:
            if step in skip:
                continue
            say(f"{step} ...")
            t0 = time.monotonic()
            extra = run_step(step, tmp, clone, env, args.installer)
            steps[step] = {"seconds": time.monotonic() - t0, **extra}
            say(f"{step}: {steps[step]['seconds']:.1f} s {extra}")
    except (BenchError, KeyboardInterrupt) as exc:
        console.print(f"[red]bench/cold could not measure[/] (at {step}): {exc}")
        return 2
    finally:
        say(f"removed {remove_cold_images()} {REPO}/* image tags")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    total = sum(s["seconds"] for s in steps.values())
    result = {
        "bench": "cold",
        "started_at": started,
        "machine": info,
        "note": busy_note(info),
        "skipped": sorted(skip),
        "steps": steps,
        "total_s": total,
        "goal_s": GOAL_S,
    }
    path = write_result("cold", result)
    for step, s in steps.items():
        console.print(f"  {step:12s} {s['seconds']:7.1f} s")
    console.print(f"result: {path.relative_to(ROOT)}")
    met = total <= GOAL_S and not skip
    console.print(
        f"fresh clone to first verdict: {total:.0f} s ({total / 60:.1f} min) over "
        f"{len(steps)} steps{' (some skipped)' if skip else ''}; goal <= {GOAL_S / 60:g} min: "
        + ("[green]met[/]" if met else "[red]missed[/]" if not skip else "not judged")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
