"""What the semantic checks share: the kinds asked by role, the toxics' fields, hints."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from harness.roles import Role, kinds_of, kinds_where, restartable
from harness.spec.files import FileProblem, probe

Loc = tuple[Any, ...]


LB_KINDS = kinds_of(Role.LOAD_BALANCER)


APP_KINDS = kinds_of(Role.WEB, Role.APP_POOL)


DB_KINDS = kinds_of(Role.DATABASE)


POOL_KINDS = kinds_of(Role.APP_POOL)  # bare FastCGI pools


GATEWAY_KINDS = kinds_where(discovers=True)  # LBs whose servers come from a registry


REGISTRY_KINDS = kinds_of(Role.REGISTRY)


# what an LB's HTTP backends may be (an edge LB balances gateways: the two-level LB)
HTTP_KINDS = kinds_of(Role.WEB, Role.CUSTOM) + GATEWAY_KINDS


CACHE_KINDS = kinds_of(Role.CACHE)


REPLICATING = kinds_where(replicates=True)  # replicas: N is a primary and its replicas


BRING_IMAGE = kinds_where(role=Role.DATABASE, builtin_image=False)  # Debian ships no server


NO_DEFAULT_CONFIG = kinds_where(default_config=False)  # `config:` must name its path


SUBNET_POOL = (
    "10.213.0.0/16"  # where the run's /24 comes from without network.subnet (runtime/stack.py)
)


HARNESS_ROOT = Path(__file__).resolve().parents[3]  # where the built-in locustfiles/ live


MAX_VRRP_GROUPS = 205  # keepalived.conf: virtual_router_id 51, 52, ... up to 255


SINGLETONS = kinds_where(singleton=True)  # the harness runs one of each, with one container


# Processes process_kill can start again (harness/chaos/process_kill.py RESTART), and the built-in
# kinds they run in (images/lb/supervise.sh, images/web/supervise.sh): harness/roles.py.
RESTARTABLE = restartable()


# Which fields each toxic takes (harness/chaos/toxic.py), the first one required.
TOXIC_FIELDS = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slow_close": ("delay",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
    "down": (),
}


TOXIC_REQUIRED = {
    "latency": "latency",
    "bandwidth": "rate",
    "slicer": "average_size",
    "limit_data": "bytes",
}


TOXIC_COMMON = ("link", "stream", "toxicity")


def hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"known: {', '.join(choices)}" if choices else "declare it first"


def file_problem(base_dir: Path, rel: str, want: str = "file") -> str | None:
    """Why `rel` (relative to the topology file) is not a readable `want` ('file' or 'dir')."""
    path = base_dir / rel
    try:
        kind = probe(path)
    except FileProblem as exc:
        return exc.message
    if kind == want:
        return None
    if kind == "missing":
        noun = "directory" if want == "dir" else "file"
        return f"no {noun} {path} (paths are relative to the topology file)"
    if want == "dir":
        return (
            f"{path} is {'a file' if kind == 'file' else kind}, not a directory (give a directory)"
        )
    what = "a directory" if kind == "dir" else kind
    return f"{path} is {what}, not a regular file (give the path of a file)"
