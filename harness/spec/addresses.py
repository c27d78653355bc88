"""Who gets which address on the run's network: one rule for validation and for the plan.

In the run's subnet, `.1` is the gateway and `.2`-`.9` are left to the harness. VIPs are
placed first: explicit ones where written, automatic ones from `.200` up (then downward from
`.199` when the top of the subnet is full), never on an address already taken. Containers then
take `.10` upward in service order, skipping every VIP. So no two containers, and no container
and VIP, ever share an address; what does not fit is a validation problem, not an IndexError.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from harness.spec.liveness import instance_names
from harness.spec.models import Topology

FIRST_HOST = 10  # .2-.9 are left free for the harness's own use
VIP_HOST = 200
DEFAULT_PREFIX = 24  # without network.subnet, the run gets a /24 of 10.213.0.0/16
EXAMPLE_SUBNET = "10.213.0.0/24"  # what validation allocates in when no subnet is given


@dataclass
class Addresses:
    ips: dict[str, str]  # instance -> address
    vips: dict[str, str]  # service -> VIP


class AddressError(ValueError):
    """The topology does not fit its subnet; the message carries its fix."""


def count(topo: Topology) -> tuple[int, int]:
    """(containers, VIPs) of a topology whose automatic services are already added."""
    containers = sum(s.replicas for s in topo.services.values())
    vips = sum(1 for s in topo.services.values() if getattr(s, "keepalived", None) is not None)
    return containers, vips


def allocate(topo: Topology, subnet: str) -> Addresses:
    """Addresses for every instance and VIP of `topo` (automatic services already added)."""
    net = ipaddress.IPv4Network(subnet)
    first = int(net.network_address) + FIRST_HOST
    last = int(net.broadcast_address) - 1
    usable = max(0, last - first + 1)
    containers, n_vips = count(topo)
    if containers + n_vips > usable:
        raise AddressError(capacity_message(containers, n_vips, net, usable))
    taken: set[int] = set()
    vips: dict[str, str] = {}
    for name, svc in topo.services.items():
        ka = getattr(svc, "keepalived", None)
        if ka is not None and ka.vip != "auto":
            vips[name] = ka.vip
            taken.add(int(ipaddress.IPv4Address(ka.vip)))
    top = max(first, min(int(net.network_address) + VIP_HOST, last + 1))
    candidates = _chain(range(top, last + 1), range(top - 1, first - 1, -1))
    for name, svc in topo.services.items():
        ka = getattr(svc, "keepalived", None)
        if ka is not None and ka.vip == "auto":
            addr = next(a for a in candidates if a not in taken)
            taken.add(addr)
            vips[name] = str(ipaddress.IPv4Address(addr))
    ips: dict[str, str] = {}
    addr = first
    for name, svc in topo.services.items():
        for inst in instance_names(name, svc.replicas):
            while addr in taken:
                addr += 1
            ips[inst] = str(ipaddress.IPv4Address(addr))
            addr += 1
    ordered = {n: vips[n] for n in topo.services if n in vips}
    return Addresses(ips, ordered)


def _chain(*ranges: range) -> Iterator[int]:
    for r in ranges:
        yield from r


def capacity_message(containers: int, vips: int, net: ipaddress.IPv4Network, usable: int) -> str:
    what = f"{containers} containers (with the automatic prometheus and toxiproxy)"
    if vips:
        what += f" and {vips} VIP{'s' if vips > 1 else ''}"
    if net.prefixlen <= 16:
        fix = "lower replicas, or split the topology"
    else:
        example = ipaddress.IPv4Network(f"{net.network_address}/{net.prefixlen - 1}", strict=False)
        fix = f"lower replicas, or set network: {{subnet: {example}}}"
    return (
        f"{what} need {containers + vips} addresses, but a /{net.prefixlen} has {usable} "
        f"from .{FIRST_HOST} up ({fix})"
    )
