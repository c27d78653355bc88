"""The Prometheus a `runtime: hosts` run judges from: the harness's own, listening on a free
loopback port, so it reaches the harness's exporters on loopback and the hosts exactly as this
machine does: the `prometheus` binary when this machine has one (Debian's package; a hosts
run then needs no Docker at all), else the harness's image in a container on the host network,
labelled with the run id and removed with the run. It scrapes the harness's exporters and every exporter the hosts' kinds declare at the
host's address (HAProxy's :8405, the Redis and MySQL exporters...).

With `prometheus: {url}` (the user's Prometheus) it scrapes the harness's exporters only, and
reads the user's series through Prometheus's own `remote_read` (`URL/api/v1/read`, raw samples,
`read_recent`), so every verdict query, the user's `promql:` ones over their own labels
included, is answered by the run's Prometheus alone. The hosts' exporters are then expected
under the user's labels, `instance="ADDR:PORT"` (what Prometheus names a target it scrapes at
the host's address and the kind's exporter port) or the label `prometheus.instances` maps the
host to, and the baseline asks for each to be up."""

from __future__ import annotations

import ctypes
import io
import ipaddress
import shutil
import signal
import socket
import subprocess
import tarfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import httpx
import yaml

from harness import kinds
from harness.errors import InfrastructureError, SpecError
from harness.kinds.base import render
from harness.plan.model import ScrapeTarget
from harness.remote.targets import Host, hosts_of, resolve
from harness.runtime import labels
from harness.runtime.docker import client
from harness.spec.graph import PROMETHEUS, with_auto_services
from harness.spec.models import Topology

INSTANCE = "prometheus"


class Prom(Protocol):  # harness.observe.prom.Prometheus, a later floor
    def scalar(self, expr: str, at: float | None = None) -> float | None: ...

    def targets_up(self) -> dict[str, bool]: ...


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


def scraped(topo: Topology, hosts: dict[str, Host]) -> list[ScrapeTarget]:
    """The hosts' exporters the run's Prometheus scrapes itself: none when the user's
    Prometheus scrapes them (the run's reads them from it)."""
    return [] if topo.prometheus is not None else host_exporters(hosts)


def user_url(topo: Topology) -> str | None:
    """The user's Prometheus as journaled, reported and named in messages: without the
    credentials a `http://user:password@...` url carries (`credentials()` keeps them)."""
    if topo.prometheus is None:
        return None
    parts = urlsplit(topo.prometheus.url.rstrip("/"))
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host).geturl()


def credentials(topo: Topology) -> tuple[str, str] | None:
    """The user name and password of the url (basic auth), if it has any."""
    parts = urlsplit(topo.prometheus.url) if topo.prometheus is not None else None
    if parts is None or parts.username is None:
        return None
    return unquote(parts.username), unquote(parts.password or "")


def user_instance(topo: Topology, t: ScrapeTarget) -> str:
    """The `instance` label the user's Prometheus gives a host's exporter: `ADDR:PORT`, unless
    `prometheus.instances` names another for that host."""
    mapped = topo.prometheus.instances.get(t.instance) if topo.prometheus is not None else None
    return mapped or t.address


def user_instances(topo: Topology) -> list[str]:
    """The `instance` labels of every host exporter the user's Prometheus scrapes (none without
    `prometheus:`)."""
    if topo.prometheus is None:
        return []
    return [user_instance(topo, t) for t in host_exporters(hosts_of(topo))]


def user_up(instance: str) -> str:
    """`up` of one of the user's targets: `run=""`, so never one the run's Prometheus scrapes
    itself (those carry the run id), whatever `prometheus.instances` maps."""
    return f'up{{instance="{instance}",run=""}}'


def addresses(name: str) -> list[str]:
    """Every address `name` resolves to, IPv4 and IPv6 (Prometheus and httpx resolve it again
    and may take any of them); [] when it does not resolve."""
    try:
        ipaddress.ip_address(name)
        return [name]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(name, None, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(ai[4][0]).partition("%")[0] for ai in found})


def refuse_outside(topo: Topology, source: str) -> None:
    """SpecError (exit 3) when the user's Prometheus is outside `allow:` (loopback is this
    machine's own: allowed; a name is resolved first, as for the hosts), or an instance it
    maps has no exporter to match."""
    url = user_url(topo)
    if url is None or topo.prometheus is None:
        return
    name = urlsplit(url).hostname or ""
    ips = addresses(name)
    allow = [ipaddress.IPv4Network(r) for r in topo.allow]

    def inside(ip: str) -> bool:
        a = ipaddress.ip_address(ip)
        return a.is_loopback or (a.version == 4 and any(a in net for net in allow))

    out = [ip for ip in ips if not inside(ip)]
    if not ips or out:
        why = (
            "does not resolve"
            if not ips
            else f"({out[0]}) is outside allow: [{', '.join(topo.allow)}]"
        )
        raise SpecError(
            [
                f"{source}: prometheus.url: {name} {why}; the harness reads only declared ranges "
                "(fix the url, or add its range to allow:)"
            ]
        )
    mine = {t.instance for t in host_exporters(hosts_of(topo))}
    idle = [i for i in topo.prometheus.instances if i not in mine]
    if idle:
        raise SpecError(
            [
                f"{source}: prometheus.instances.{idle[0]}: {idle[0]}'s kind has no exporter "
                f"to match (map only {', '.join(sorted(mine)) or 'none'}, or remove it)"
            ]
        )


def remote_read(url: str, auth: tuple[str, str] | None = None) -> str:
    """The run's Prometheus's remote storage: the user's Prometheus, read for every query
    (`read_recent`: also the last hours, which the run's own storage covers). No redirect is
    followed: the address checked against allow: is the only one read."""
    spec: dict[str, object] = {"url": f"{url}/api/v1/read", "name": "user", "read_recent": True}
    spec |= {"remote_timeout": "10s", "follow_redirects": False}
    if auth is not None:
        spec["basic_auth"] = {"username": auth[0], "password": auth[1]}
    return yaml.safe_dump({"remote_read": [spec]})


def config(run_id: str, topo: Topology, targets: list[ScrapeTarget]) -> str:
    """prometheus.yml of the run's Prometheus."""
    text = render(
        "prometheus.yml.j2", run_id=run_id, interval=scrape_interval(topo), targets=targets
    )
    url = user_url(topo)
    return text if url is None else f"{text.rstrip()}\n{remote_read(url, credentials(topo))}"


def not_ready(prom: Prom, topo: Topology, hosts: dict[str, Host]) -> str:
    """Why the run's Prometheus cannot judge the hosts yet ('' when it can): a host exporter it
    scrapes is down, or the user's Prometheus does not answer or reports no `up` of 1 for a
    host exporter (asked through the run's Prometheus: its remote_read answers too)."""
    url = user_url(topo)
    if url is None:
        up = prom.targets_up()
        down = sorted(t.instance for t in host_exporters(hosts) if not up.get(t.instance))
        return f"exporters down: {', '.join(down)}" if down else ""
    try:  # no proxy from the environment, no redirect: only the address allow: admitted
        ready = httpx.get(f"{url}/-/ready", timeout=2, auth=credentials(topo), trust_env=False)
    except httpx.HTTPError as exc:
        return f"the user's Prometheus at {url} does not answer: {exc}"
    if ready.status_code != 200:
        return f"the user's Prometheus at {url} is not ready: {ready.status_code}"
    for t in host_exporters(hosts):
        expr = f"max({user_up(user_instance(topo, t))})"
        try:
            value = prom.scalar(expr)
        except InfrastructureError as exc:  # its remote read failed: not ready yet
            return str(exc).splitlines()[0]
        if value != 1:
            seen = "absent" if value is None else f"{value:g}"
            return (
                f"{t.instance}'s exporter: {expr} is {seen} "
                f"at the user's Prometheus ({url}); it must scrape {t.address} (or map "
                f"prometheus.instances.{t.instance}, or remove prometheus:)"
            )
    return ""


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
    cfg.write_text(config(run_id, topo, targets))
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
    cfg = config(run_id, topo, targets).encode()
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
