"""Names, links, dependency cycles and addresses: what the run network must hold."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from harness.spec import graph
from harness.spec.addresses import (
    EXAMPLE_SUBNET,
    FIRST_HOST,
    capacity_message,
    count,
)
from harness.spec.liveness import instance_names
from harness.spec.models import Topology
from harness.spec.semantic.common import (
    APP_KINDS,
    MAX_VRRP_GROUPS,
    REPLICATING,
    SINGLETONS,
    SUBNET_POOL,
    Loc,
)


def check_names(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """Service names the harness uses itself, kinds it runs once, and container names twice."""
    services = topo.services
    for name, svc in services.items():
        if name in graph.AUTO_SERVICES and svc.kind != name:
            yield (
                ("services", name),
                f"'{name}' is the name of the {name} the harness adds to every run"
                + (" with links:" if name == graph.TOXIPROXY else "")
                + f", so this {svc.kind} service would be replaced or clash with it (rename it)",
            )
    for kind in SINGLETONS:
        of_kind = [n for n, s in services.items() if s.kind == kind]
        for extra in of_kind[1:]:
            yield (
                ("services", extra, "kind"),
                f"a run has one {kind}, and '{of_kind[0]}' already is it (remove this one)",
            )
        for n in of_kind:
            if services[n].replicas != 1:
                yield (
                    ("services", n, "replicas"),
                    f"the harness runs one {kind} container (remove replicas, or set replicas: 1)",
                )
    owner: dict[str, str] = {}
    for name, svc in services.items():
        for inst in instance_names(name, svc.replicas):
            owner.setdefault(inst, name)
    for name, svc in services.items():
        clash = next((i for i in instance_names(name, svc.replicas) if owner[i] != name), None)
        if clash is not None:
            yield (
                ("services", name),
                f"its container '{clash}' would have the name of a container of "
                f"'{owner[clash]}': two containers cannot share a name and an address "
                f"(rename '{name}')",
            )
        elif name in owner and owner[name] != name:
            yield (
                ("services", name),
                f"'{name}' is also the name of a container of '{owner[name]}', so a fault "
                f"on '{name}' would be ambiguous (rename '{name}')",
            )


def check_links(topo: Topology) -> Iterator[tuple[Loc, str]]:
    services = topo.services
    seen: dict[tuple[str, str], int] = {}
    for i, link in enumerate(topo.links):
        if link.from_ == link.to:
            # mariadb -> itself is the replication channel: replicas reach the primary through it
            svc = services.get(link.to)
            if svc is None or svc.kind not in REPLICATING or svc.replicas < 2:
                yield (
                    ("links", i, "to"),
                    f"a link from '{link.from_}' to itself carries no traffic (point it at the "
                    "database or redis; only a replicated mariadb links to itself, for its "
                    "replication channel)",
                )
        elif link.from_ in services and services[link.from_].kind not in APP_KINDS:
            yield (
                ("links", i, "from"),
                f"links go from the app's nodes (web or php-fpm), and '{link.from_}' is "
                f"{services[link.from_].kind}, which never connects to '{link.to}' (use the web service)",
            )
        key = (link.from_, link.to)
        if key in seen:
            yield (
                ("links", i),
                f"a second link {link.from_}->{link.to} would put two proxies on one connection "
                f"(remove it: links[{seen[key]}] already is {link.from_}->{link.to})",
            )
        seen.setdefault(key, i)


def check_cycle(topo: Topology) -> Iterator[tuple[Loc, str]]:
    full = graph.with_auto_services(topo)
    cycle = graph.find_cycle(full)
    if not cycle:
        return
    declared = [e for e in cycle if e.index is not None]
    if declared:  # report it where the user can break it: a depends_on entry
        # the one that goes against what the kinds imply (a database depending on its LB),
        # else the last one declared
        against = [e for e in declared if _implied(full, e.needs, e.service)]
        order = list(topo.services)
        pick = against[0] if against else max(declared, key=lambda e: order.index(e.service))
        k = cycle.index(pick)
        cycle = cycle[k:] + cycle[:k]
    first = cycle[0]
    names = [e.service for e in cycle] + [cycle[0].service]
    if len(cycle) > 8:  # a long chain: its ends, and how long it is
        path = " -> ".join(names[:4] + ["..."] + names[-3:]) + f" ({len(cycle)} services)"
    else:
        path = " -> ".join(names)
    reasons = [e.why for e in cycle[1:]] if first.index is not None else [e.why for e in cycle]
    why = f" ({'; '.join(reasons)})" if reasons and len(cycle) <= 8 else ""
    if first.index is not None:
        loc: Loc = ("services", first.service, "depends_on", first.index)
        fix = f"remove '{first.needs}' from {first.service}'s depends_on"
    else:
        loc, fix = ("services", first.service), "break it"
    yield loc, f"dependency cycle {path}{why} ({fix})"


def _implied(topo: Topology, start: str, goal: str) -> bool:
    """Whether `start` waits for `goal` through implicit edges alone (no depends_on)."""
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for e in graph.edges(topo, node):
            if e.index is None and e.needs not in seen:
                if e.needs == goal:
                    return True
                seen.add(e.needs)
                todo.append(e.needs)
    return False


def check_addresses(topo: Topology) -> Iterator[tuple[Loc, str]]:
    full = graph.with_auto_services(topo)
    subnet = topo.network.subnet or EXAMPLE_SUBNET
    net = ipaddress.IPv4Network(subnet)
    containers, vips = count(full)
    usable = max(0, net.num_addresses - 1 - FIRST_HOST)
    if containers + vips > usable:
        loc: Loc = ("network", "subnet") if topo.network.subnet else ("services",)
        yield loc, capacity_message(containers, vips, net, usable)
    if vips > MAX_VRRP_GROUPS:
        yield (
            ("services",),
            f"{vips} services have a VIP, but VRRP router ids 51 to 255 give room for "
            f"{MAX_VRRP_GROUPS} (give at most {MAX_VRRP_GROUPS} services a keepalived:)",
        )


def check_vip(topo: Topology, name: str, vip: str) -> Iterator[tuple[Loc, str]]:
    loc: Loc = ("services", name, "keepalived", "vip")
    if topo.runtime == "hosts":  # existing machines: harness/spec/hostsrt.py checks it
        return
    if topo.network.subnet is None:
        yield (
            loc,
            (
                f"an explicit VIP needs network.subnet: the run's /24 is only picked at run time from {SUBNET_POOL} "
                "(add network: {subnet: 10.213.7.0/24} containing it, or write vip: auto)"
            ),
        )
        return
    net = ipaddress.IPv4Network(topo.network.subnet)
    addr = ipaddress.IPv4Address(vip)
    example = net.network_address + 200  # the subnet is a /24 or larger
    if addr not in net:
        yield (
            loc,
            f"{vip} is outside network.subnet {net} (pick an address inside it, e.g. {example})",
        )
    elif addr in (net.network_address, net.broadcast_address, net.network_address + 1):
        role = {net.network_address: "network", net.broadcast_address: "broadcast"}.get(
            addr, "gateway"
        )
        yield loc, f"{vip} is the {role} address of {net} (pick a host address, e.g. {example})"
    elif int(addr) < int(net.network_address) + FIRST_HOST:
        yield (
            loc,
            f"{vip} is among .2 to .{FIRST_HOST - 1} of {net}, which the harness keeps for its "
            f"own use (pick another address, e.g. {example})",
        )
    else:
        others = [
            n
            for n, s in topo.services.items()
            if n != name and getattr(getattr(s, "keepalived", None), "vip", None) == vip
        ]
        if others:
            yield loc, f"{vip} is also the VIP of '{others[0]}' (give each service its own VIP)"
