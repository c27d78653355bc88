"""Checks of `runtime: hosts` topologies (services that name existing machines over SSH): which
keys belong to which runtime, every host inside the declared `allow:` ranges, and only the
faults the hosts runtime knows how to apply with a host's own tools."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.errors import SpecError
from harness.roles import Role, kinds_of
from harness.spec.liveness import instance_names
from harness.spec.models import Topology
from harness.spec.yamlfile import read_yaml

Loc = tuple[Any, ...]

# what `runtime: hosts` can do to a machine over SSH (harness/remote/faults.py)
HOST_FAULTS = ("kill", "stop", "restart", "vip_failover", "partition", "latency")
HARNESS_OWN = kinds_of(Role.OBSERVER, Role.PROXY)  # what the harness adds to a docker run
# assertions that read the hosts' exporters under the harness's labels (run=, instance=db-1:
# harness/verdict/data.py), which the user's Prometheus does not give them
HOST_SERIES = ("replication_lag",)


def host_address(url: str) -> str:
    """`ssh://user@10.0.0.5:2222` -> `10.0.0.5`."""
    return urlsplit(url).hostname or ""


def outside(address: str, allow: list[str]) -> bool:
    """True when `address` is an IPv4 literal outside every range (names are resolved and
    checked when the harness connects)."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return not any(ip in ipaddress.IPv4Network(r) for r in allow)


def check_prometheus(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """The user's Prometheus: inside allow: (or loopback), and no assertion needing the
    harness's own labels on the hosts' series."""
    if topo.prometheus is None:
        return
    addr = host_address(topo.prometheus.url)
    loop = addr == "localhost" or addr.startswith("127.")
    if topo.allow and not loop and outside(addr, topo.allow):
        yield (
            ("prometheus", "url"),
            f"{addr} is outside allow: [{', '.join(topo.allow)}]; the harness reads only declared "
            "ranges (fix the url, or add its range to allow:)",
        )
    hosts = [
        inst
        for name, svc in topo.services.items()
        for inst in instance_names(name, len(svc.hosts))
        if svc.hosts
    ]
    for inst, label in topo.prometheus.instances.items():
        if inst not in hosts:
            yield (
                ("prometheus", "instances", inst),
                f"unknown host instance '{inst}' (one of {', '.join(hosts)}: the first host of "
                "web is web-1, a service's only host is named after it)",
            )
        elif not label or any(c.isspace() or c in '"\\' for c in label):
            yield (
                ("prometheus", "instances", inst),
                f"'{label}' is not an instance label (write the value your Prometheus shows, "
                "e.g. lb1.example:8405)",
            )
    for i, a in enumerate(topo.assertions):
        if a.kind in HOST_SERIES:
            yield (
                ("assertions", i, a.kind),
                f"{a.kind} reads the hosts' exporters under the run's labels, which your "
                "Prometheus does not give them (write it as a promql: assertion over your "
                "labels, or remove prometheus: so the run's Prometheus scrapes the exporters)",
            )


def check(topo: Topology) -> Iterator[tuple[Loc, str]]:
    if topo.runtime != "hosts":
        for name, svc in topo.services.items():
            if svc.hosts:
                yield (
                    ("services", name, "hosts"),
                    "hosts: names existing machines, which only runtime: hosts uses (add "
                    "runtime: hosts at the top of the file, or remove hosts:)",
                )
        for key in ("allow", "prometheus"):
            if getattr(topo, key):
                yield (
                    (key,),
                    f"{key}: belongs to runtime: hosts (add runtime: hosts, or remove {key}:)",
                )
        return
    if not topo.allow:
        yield (
            ("runtime",),
            "hosts needs allow: with the address ranges the harness may act on "
            "(add e.g. allow: [10.0.0.0/24])",
        )
    # the service whose stored orders no_lost_writes reads (harness/run/hosts_post.database)
    db = next((n for n, s in topo.services.items() if s.kind in kinds_of(Role.DATABASE)), None)
    for name, svc in topo.services.items():
        if svc.kind in HARNESS_OWN:
            continue
        if svc.control is not None and svc.control.read_orders and name != db:
            yield (
                ("services", name, "control", "read_orders"),
                "only the database's orders are read (no_lost_writes reads them on "
                + (f"{db}: move it to services.{db}.control" if db else "no service here")
                + ", or remove it)",
            )
        if not svc.hosts:
            yield (
                ("services", name, "hosts"),
                "runtime: hosts needs the machines this service runs on (add hosts: "
                "[ssh://user@ADDR, ...])",
            )
        for i, url in enumerate(svc.hosts):
            addr = host_address(url)
            if topo.allow and outside(addr, topo.allow):
                yield (
                    ("services", name, "hosts", i),
                    f"{addr} is outside allow: [{', '.join(topo.allow)}]; the harness acts only "
                    "on declared ranges (fix the address, or add its range to allow:)",
                )
        ka = getattr(svc, "keepalived", None)
        if ka is not None and (ka.vip == "auto" or (topo.allow and outside(ka.vip, topo.allow))):
            yield (
                ("services", name, "keepalived", "vip"),
                f"runtime: hosts needs the VIP the hosts already float, inside allow: (got "
                f"{ka.vip}; write e.g. vip: 10.0.0.100)",
            )
    yield from check_prometheus(topo)
    for i, step in enumerate(topo.chaos):
        kind = step.fault.kind
        if kind not in HOST_FAULTS:
            yield (
                ("chaos", i, "fault", kind),
                f"{kind} has no hosts-runtime form (use one of {', '.join(HOST_FAULTS)})",
            )


def refuse_up(path: str | Path) -> str | None:
    """`harness up` (and the pytest plugin's harness_stack) start a docker stack, which a
    `runtime: hosts` topology does not describe: its machines are up already. The one-line
    refusal saying what to use instead; None for any other file (validation reads it as usual)."""
    try:
        data, lines = read_yaml(Path(path))
    except SpecError:
        return None
    if not isinstance(data, dict) or data.get("runtime") != "hosts":
        return None
    return (
        f"{path}:{lines.get(('runtime',), 1)}: runtime: hosts names machines that are "
        f"up already, and harness up starts containers (check they answer: harness hosts check "
        f"{path}; load and judge them: harness run {path})"
    )
