"""The machines a `runtime: hosts` topology names, as instances (`web-1` is the first host of
`web`), and the two safety rules: a host outside the topology's `allow:` ranges is refused
(names are resolved first), and a destructive fault on a host not marked `lab: true` needs
`--i-know`."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from harness.errors import SpecError
from harness.roles import FACTS
from harness.spec.liveness import instance_names
from harness.spec.models import Topology

# faults that take a service down or cut it off (every host fault today)
DESTRUCTIVE = ("kill", "stop", "restart", "vip_failover", "partition", "latency")


def default_unit(kind: str, service: str) -> str:
    """The systemd unit a kind runs as on an existing machine (harness/roles.py), else the
    service's name."""
    facts = FACTS.get(kind)
    return facts.unit if facts is not None and facts.unit else service


@dataclass(frozen=True)
class Host:
    instance: str
    service: str
    kind: str
    url: str
    address: str
    lab: bool

    @property
    def user(self) -> str | None:
        return urlsplit(self.url).username

    @property
    def port(self) -> int | None:
        return urlsplit(self.url).port


def hosts_of(topo: Topology) -> dict[str, Host]:
    """Every host of the topology by instance name, in file order."""
    out: dict[str, Host] = {}
    for name, svc in topo.services.items():
        for inst, url in zip(instance_names(name, len(svc.hosts)), svc.hosts, strict=False):
            out[inst] = Host(inst, name, svc.kind, url, urlsplit(url).hostname or "", svc.lab)
    return out


def resolve(address: str) -> str:
    try:
        ipaddress.IPv4Address(address)
        return address
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(address, None, socket.AF_INET)[0][4][0])
    except (OSError, IndexError):
        return ""


def refuse_outside(topo: Topology, hosts: dict[str, Host], source: str) -> None:
    """SpecError (exit 3) naming every host whose address is outside `allow:`."""
    allow = [ipaddress.IPv4Network(r) for r in topo.allow]
    problems = []
    for h in hosts.values():
        ip = resolve(h.address)
        if not ip or not any(ipaddress.IPv4Address(ip) in net for net in allow):
            seen = f"{h.address} ({ip})" if ip and ip != h.address else h.address
            why = "does not resolve" if not ip else f"is outside allow: [{', '.join(topo.allow)}]"
            problems.append(
                f"{source}: services.{h.service}.hosts: {seen} {why}; the harness acts only on "
                "declared ranges (fix the address, or add its range to allow:)"
            )
    if problems:
        raise SpecError(problems)


def refuse_unconfirmed(
    topo: Topology, hosts: dict[str, Host], targets: dict[str, list[str]], i_know: bool, source: str
) -> None:
    """SpecError (exit 3) for each destructive step whose hosts are not all `lab: true`, unless
    the user said `--i-know`. `targets`: step name -> the instances it acts on."""
    if i_know:
        return
    problems = []
    for step in topo.chaos:
        if step.fault.kind not in DESTRUCTIVE:
            continue
        prod = [i for i in targets.get(step.name, []) if i in hosts and not hosts[i].lab]
        if prod:
            problems.append(
                f"{source}: chaos '{step.name}': {step.fault.kind} acts on "
                f"{', '.join(prod)}, not marked lab: true (mark the service lab: true, or "
                "pass --i-know to confirm a destructive fault on these machines)"
            )
    if problems:
        raise SpecError(problems)
