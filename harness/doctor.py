"""`harness doctor`: is this machine able to run the harness? Each check says how to fix it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _docker() -> tuple[Check, object | None]:
    try:
        import docker

        c = docker.from_env(timeout=10)
        v = c.version()
        return Check("docker engine", True, f"{v.get('Version')} (API {v.get('ApiVersion')})"), c
    except Exception as exc:  # noqa: BLE001 - doctor reports, never raises
        return Check(
            "docker engine",
            False,
            exc.__class__.__name__,
            "apt-get install -y docker.io && (dockerd >/var/log/dockerd.log 2>&1 &), or ./install.sh",
        ), None


def checks() -> list[Check]:
    from harness.runtime import images

    out: list[Check] = []
    docker_check, client = _docker()
    out.append(docker_check)
    if client is not None:
        root = client.info().get("DockerRootDir", "/var/lib/docker")  # type: ignore[attr-defined]
        free = shutil.disk_usage(root if Path(root).exists() else "/").free / 2**30
        out.append(
            Check(
                "disk",
                free > 5,
                f"{free:.1f} GiB free under {root}",
                "free space: images need ~3 GiB",
            )
        )
        try:
            client.images.get(images.BASE_IMAGE)  # type: ignore[attr-defined]
            out.append(Check("base image", True, images.BASE_IMAGE))
        except Exception:  # noqa: BLE001
            have = shutil.which("debootstrap") is not None
            out.append(
                Check(
                    "base image",
                    have,
                    f"{images.BASE_IMAGE} absent; "
                    + ("debootstrap will make it" if have else "debootstrap missing"),
                    "apt-get install -y debootstrap (or run `harness images build`)",
                )
            )
        for name in images.available():
            tag = images.image_tag(name)
            try:
                client.images.get(tag)  # type: ignore[attr-defined]
                out.append(Check(f"image {name}", True, tag))
            except Exception:  # noqa: BLE001
                out.append(
                    Check(f"image {name}", False, f"{tag} not built", "harness images build")
                )
    ipt = shutil.which("iptables") or shutil.which("iptables-legacy")
    out.append(
        Check(
            "iptables",
            bool(ipt),
            ipt or "missing",
            "apt-get install -y iptables (partition faults)",
        )
    )
    out.append(
        Check(
            "nsenter",
            bool(shutil.which("nsenter")),
            shutil.which("nsenter") or "missing",
            "apt-get install -y util-linux",
        )
    )
    fwd = Path("/proc/sys/net/ipv4/ip_forward")
    out.append(
        Check(
            "ip_forward",
            fwd.exists() and fwd.read_text().strip() == "1",
            fwd.read_text().strip() if fwd.exists() else "?",
            "sysctl -w net.ipv4.ip_forward=1",
        )
    )
    proc = subprocess.run(
        [sys.executable, "-c", "import locust, prometheus_client"], capture_output=True, text=True
    )
    out.append(
        Check(
            "locust",
            proc.returncode == 0,
            "importable" if proc.returncode == 0 else proc.stderr.strip()[-120:],
            "pip install -e . (or ./install.sh)",
        )
    )
    return out
