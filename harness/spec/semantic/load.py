"""The load: where its locustfile is, and that load.url stays inside the run."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from harness.spec.files import FileProblem, probe
from harness.spec.models import Topology
from harness.spec.semantic.common import HARNESS_ROOT, SUBNET_POOL, Loc


def resolve_locustfile(base_dir: Path, locustfile: str) -> Path | None:
    """Where a locustfile is: relative to the topology file like every other path, else (for
    the built-in `locustfiles/...` and files named from the harness's own directory, as the
    shipped topologies do) relative to the harness's directory. Never the working directory."""
    for root in (base_dir, HARNESS_ROOT):
        path = root / locustfile
        try:
            if probe(path) == "file":
                return path.resolve()
        except FileProblem:
            continue
    return None


def check_load(
    topo: Topology, base_dir: Path, instances: list[str], allow_external_target: bool
) -> Iterator[tuple[Loc, str]]:
    load = topo.load
    try:
        kind = probe(base_dir / load.locustfile)
    except FileProblem as exc:
        yield ("load", "locustfile"), exc.message
        kind = "file"
    if kind not in ("file", "missing"):
        what = "a directory" if kind == "dir" else kind
        yield (
            ("load", "locustfile"),
            f"{base_dir / load.locustfile} is {what}, not a locustfile (give a Python file)",
        )
    elif resolve_locustfile(base_dir, load.locustfile) is None:
        yield (
            ("load", "locustfile"),
            f"no file {base_dir / load.locustfile} (paths are relative to the topology file; "
            "the built-in ones are locustfiles/session_user.py and locustfiles/mix.py)",
        )
    if load.url is not None and not allow_external_target:
        yield from _check_url(topo, load.url, instances)


def _check_url(topo: Topology, url: str, instances: list[str]) -> Iterator[tuple[Loc, str]]:
    """The load goes only to the run's own containers or loopback, refused here (not after the
    network exists) unless `allow_external_target` (harness run --allow-external-target)."""
    loc: Loc = ("load", "url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        yield (
            loc,
            f"'{url}' is not a URL: {exc} (write e.g. http://lb or http://10.213.7.200:8080/app)",
        )
        return
    host = parts.hostname or ""
    if host == "localhost" or host in instances:
        return
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return
    fix = (
        "use load.target with a service name, or a container's name as the host; "
        "harness run --allow-external-target 'why' allows another host"
    )
    subnet = topo.network.subnet
    if ip is not None and subnet is None:
        yield (
            loc,
            f"{host} is an address, but the run's network is only picked at run time from "
            f"{SUBNET_POOL}, so it may not be the run's (set network.subnet containing it, or {fix})",
        )
    elif ip is None or subnet is None or ip not in ipaddress.ip_network(subnet):
        where = f"inside network.subnet {subnet}" if subnet else "a container of this topology"
        yield (
            loc,
            f"{host} is neither loopback nor {where}: load goes to the run's own stack only ({fix})",
        )
