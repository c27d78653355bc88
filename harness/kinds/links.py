"""Where a declared `link:` is served on the run's proxy: one proxy per link, named after its
ends, listening on its own port (the proxy kind renders them, every client kind dials them)."""

from __future__ import annotations

from harness.spec.models import Link, Topology

FIRST_PORT = 10000


def proxy_name(link: Link) -> str:
    return f"{link.from_}_to_{link.to}"


def proxy_port(topology: Topology, link: Link) -> int:
    return FIRST_PORT + [lk.name for lk in topology.links].index(link.name)
