"""Images for the built-in kinds: built from `images/<name>/` FROM debian:bookworm-slim, several at
once, tagged by a hash of their build context (so an unchanged context is never rebuilt), and the
base image bootstrapped with mmdebstrap (or debootstrap) when it is absent. No registry is
contacted unless asked (`HARNESS_PULL_BASE=1`): air-gapped machines are the normal case, not the
exception.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from docker.errors import APIError, BuildError, ImageNotFound

from harness.errors import InfrastructureError, SpecError
from harness.runtime import labels
from harness.runtime.docker import client

ROOT = Path(__file__).resolve().parents[2]
IMAGES_DIR = ROOT / "images"
BASE_IMAGE = "debian:bookworm-slim"
MIRROR = os.environ.get("HARNESS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
MMDEBSTRAP_HOOK = "/usr/share/mmdebstrap/hooks/merged-usr"
# The repository the built-in images are tagged in (`harness/lb:<hash>`). Another name builds a
# second, independent set beside the usual one (bench/cold.py times a first build that way
# without removing the images everybody else on the engine uses).
REPO_ENV, NOCACHE_ENV = "HARNESS_IMAGE_REPO", "HARNESS_BUILD_NOCACHE"
JOBS_ENV, DEFAULT_JOBS = "HARNESS_BUILD_JOBS", 4

# Extra files some contexts need from the repository (path in repo -> path in context).
EXTRA_CONTEXT: dict[str, dict[str, str]] = {
    "toxiproxy": {"harness/toxiproxy": "harness/toxiproxy"},
}

Progress = Callable[[str], None]


def _context_files(name: str) -> list[tuple[str, Path]]:
    ctx = IMAGES_DIR / name
    if not ctx.is_dir():
        raise InfrastructureError(f"no image context {ctx} (known: {', '.join(available())})")
    files = [(str(p.relative_to(ctx)), p) for p in sorted(ctx.rglob("*")) if p.is_file()]
    for src, dst in EXTRA_CONTEXT.get(name, {}).items():
        base = ROOT / src
        files += [
            (str(Path(dst) / p.relative_to(base)), p)
            for p in sorted(base.rglob("*.py"))
            if "__pycache__" not in p.parts
        ]
    return files


def available() -> list[str]:
    return sorted(p.name for p in IMAGES_DIR.iterdir() if (p / "Dockerfile").is_file())


def image_tag(name: str) -> str:
    h = hashlib.sha256()
    for rel, path in _context_files(name):
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
        h.update(oct(path.stat().st_mode & 0o111).encode())
    return f"{os.environ.get(REPO_ENV) or 'harness'}/{name}:{h.hexdigest()[:12]}"


def _exists(tag: str) -> bool:
    try:
        client().images.get(tag)
        return True
    except ImageNotFound:
        return False


def ensure_base_image(progress: Progress = print) -> None:
    if _exists(BASE_IMAGE):
        return
    if os.environ.get("HARNESS_PULL_BASE") == "1":
        try:
            progress(f"pulling {BASE_IMAGE}")
            client().images.pull(BASE_IMAGE)
            return
        except APIError as exc:
            progress(f"pull failed ({exc.explanation}); bootstrapping instead")
    bootstrap_base_image(BASE_IMAGE, progress)


def bootstrap_commands(rootfs: Path) -> list[list[str]]:
    """The commands that can bootstrap a minbase bookworm into `rootfs`, best first: mmdebstrap
    with its merged-usr hook (a tarball; the same packages as debootstrap's minbase, no usrmerge
    nor perl, in about 2/3 of the time), then debootstrap (a directory)."""
    cmds = []
    if shutil.which("mmdebstrap") and Path(MMDEBSTRAP_HOOK).is_dir():
        tarball = str(rootfs.with_suffix(".tar"))
        hook = f"--hook-dir={MMDEBSTRAP_HOOK}"
        cmds.append(
            ["mmdebstrap", "--variant=minbase", "--quiet", hook, "bookworm", tarball, MIRROR]
        )
    if shutil.which("debootstrap"):
        cmds.append(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR])
    if not cmds:
        raise InfrastructureError(
            f"{BASE_IMAGE} is missing and neither mmdebstrap nor debootstrap is installed: "
            "apt-get install -y mmdebstrap (or debootstrap)"
        )
    return cmds


def _bootstrap(cmds: list[list[str]], tag: str, progress: Progress) -> list[str]:
    """Run the first command that succeeds; return it."""
    failures = []
    for cmd in cmds:
        progress(f"bootstrapping {tag} with {cmd[0]} from {MIRROR} (about 30 s)")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            return cmd
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        failures.append(f"{cmd[0]} failed:\n{tail}")
        shutil.rmtree(cmd[-2], ignore_errors=True)  # debootstrap's half-made directory
    raise InfrastructureError("\n".join(failures) + "\n(is the Debian mirror reachable?)")


def bootstrap_base_image(tag: str, progress: Progress = print) -> None:
    """Bootstrap a minimal bookworm from the Debian mirror and `docker import` it as `tag`."""
    with tempfile.TemporaryDirectory(prefix="harness-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        cmd = _bootstrap(bootstrap_commands(rootfs), tag, progress)
        docker = ["docker", "import"] if shutil.which("docker") else ["false"]
        if cmd[0] == "mmdebstrap":  # a tarball, apt's caches and lists already cleaned
            imp = subprocess.run([*docker, cmd[-2], tag], capture_output=True, text=True)
        else:
            for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for p in (rootfs / cache).glob("*.deb" if "archives" in cache else "*_*"):
                    p.unlink()
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
            imp = subprocess.run(
                [*docker, "-", tag], stdin=tar.stdout, capture_output=True, text=True
            )
            tar.wait()
        if imp.returncode != 0:
            raise InfrastructureError(
                f"docker import of the bootstrapped rootfs failed: {imp.stderr.strip()}"
            )


def build(name: str, progress: Progress = print) -> str:
    """Return the tag of the image for `name`, building it if its context changed."""
    tag = image_tag(name)
    if _exists(tag):
        return tag
    ensure_base_image(progress)
    progress(f"building {tag}")
    with tempfile.TemporaryDirectory(prefix=f"harness-ctx-{name}-") as tmp:
        for rel, path in _context_files(name):
            dst = Path(tmp) / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dst)
        try:
            client().images.build(
                path=tmp,
                tag=tag,
                rm=True,
                forcerm=True,
                pull=False,
                nocache=os.environ.get(NOCACHE_ENV) == "1",  # a first build, for bench/cold.py
                labels={labels.IMAGE: name},
            )
        except BuildError as exc:
            log = "".join(
                str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log
            )
            tail = "\n".join(log.strip().splitlines()[-12:])
            raise InfrastructureError(f"building image {name} failed:\n{tail}") from None
        except APIError as exc:
            raise InfrastructureError(f"building image {name} failed: {exc.explanation}") from None
    return tag


def build_jobs() -> int:
    """How many images to build at once: `HARNESS_BUILD_JOBS`, a whole number from 1, else 4."""
    given = os.environ.get(JOBS_ENV, "").strip()
    if not given:
        return DEFAULT_JOBS
    if not (given.isascii() and given.isdigit()) or int(given) < 1:
        raise SpecError(
            [
                f"{JOBS_ENV}={given!r}: not a number of images to build at once "
                f"(set it to a whole number from 1, e.g. {DEFAULT_JOBS}, or unset it)"
            ]
        )
    return int(given)


def build_all(
    names: list[str], progress: Progress = print, jobs: int | None = None
) -> dict[str, str]:
    """Build `names` (those whose context changed), `jobs` at a time (`HARNESS_BUILD_JOBS`,
    default 4): each build is mostly one single-threaded dpkg run plus network waits and a layer
    commit, so several at once use the cores better. Seven no-cache builds on 2 busy cores
    (bench/cold.py --skip apt,venv,base,run): 106 s one by one, 100 s two, 88 s four at once;
    on a quieter machine 94 s one by one, 67 s two, 64 s all seven at once."""
    if not names:
        return {}
    jobs = jobs or build_jobs()
    if any(not _exists(image_tag(n)) for n in names):
        ensure_base_image(progress)  # once, before the builds that start FROM it
    tags: dict[str, str] = {}
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=min(jobs, len(names))) as pool:
        futures = {pool.submit(build, n, progress): n for n in names}
        for fut in as_completed(futures):
            try:
                tags[futures[fut]] = fut.result()
            except InfrastructureError as exc:
                errors.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - Docker's, the network's: kept with the rest
                errors.append(f"building image {futures[fut]} failed: {exc}")
    if errors:
        raise InfrastructureError("\n".join(sorted(errors)))
    return {n: tags[n] for n in names}
