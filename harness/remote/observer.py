"""The Prometheus a `runtime: hosts` run judges from: the harness's own, listening on a free
loopback port, so it reaches the harness's exporters on loopback and the hosts exactly as this
machine does: the `prometheus` binary when this machine has one (Debian's package; a hosts
run then needs no Docker at all), else the harness's image in a container on the host network,
labelled with the run id and removed with the run. It scrapes the harness's exporters and every exporter the hosts' kinds declare at the
host's address (HAProxy's :8405, the Redis and MySQL exporters...)."""

from __future__ import annotations

import ctypes
import io
import shutil
import signal
import socket
import subprocess
import tarfile
from pathlib import Path

from harness import kinds
from harness.kinds.base import render
from harness.plan.model import ScrapeTarget
from harness.remote.targets import Host, resolve
from harness.runtime import labels
from harness.runtime.docker import client
from harness.spec.graph import PROMETHEUS, with_auto_services
from harness.spec.models import Topology

INSTANCE = "prometheus"


def loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def host_exporters(hosts: dict[str, Host]) -> list[ScrapeTarget]:
    """Each host's exporter, as its kind declares it, at the host's address."""
    out = []
    for h in hosts.values():
        ex = kinds.descriptor(h.kind).exporter
        if ex is not None:
            out.append(ex.target(resolve(h.address) or h.address, h.instance))
    return out


def scrape_interval(topo: Topology) -> float:
    return float(getattr(with_auto_services(topo).services[PROMETHEUS], "scrape_interval", 1.0))


def local_binary() -> str | None:
    return shutil.which("prometheus")


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the harness dies, even by SIGKILL (nothing to gc)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_local(
    run_dir: Path, run_id: str, topo: Topology, targets: list[ScrapeTarget]
) -> tuple[str, subprocess.Popen[bytes]]:
    """The run's Prometheus as a process of this machine, its data in the run's directory."""
    port = loopback_port()
    cfg = run_dir / "prometheus.yml"
    cfg.write_text(
        render("prometheus.yml.j2", run_id=run_id, interval=scrape_interval(topo), targets=targets)
    )
    proc = subprocess.Popen(
        [
            str(local_binary()),
            f"--config.file={cfg}",
            f"--storage.tsdb.path={run_dir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(run_dir / "prometheus.log").open("wb"),
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    return f"http://127.0.0.1:{port}", proc


def start(run_id: str, topo: Topology, image_tag: str, targets: list[ScrapeTarget]) -> str:
    """Start the run's Prometheus in a container; its URL."""
    port = loopback_port()
    cfg = render(
        "prometheus.yml.j2", run_id=run_id, interval=scrape_interval(topo), targets=targets
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("prometheus.yml")
        info.size, info.mode = len(cfg), 0o644
        tar.addfile(info, io.BytesIO(cfg))
    c = client().containers.create(
        image_tag,
        name=labels.container_name(run_id, INSTANCE),
        network_mode="host",
        command=[
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        labels=labels.for_run(run_id, topo.name, INSTANCE, INSTANCE),
    )
    c.put_archive("/etc/prometheus", buf.getvalue())
    c.start()
    return f"http://127.0.0.1:{port}"
