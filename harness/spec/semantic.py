"""Cross-reference checks pydantic cannot do alone: dangling names, cycles, kinds that need peers."""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.spec.models import Topology

Loc = tuple[Any, ...]

LB_KINDS = ("haproxy", "nginx-lb")
APP_KINDS = ("web", "php-fpm")
DB_KINDS = ("mariadb", "mysql")
NO_DEFAULT_CONFIG = ("redis", "custom")  # `config:` must name its container path: {path: file}
SUBNET_POOL = (
    "10.213.0.0/16"  # where the run's /24 comes from without network.subnet (runtime/stack.py)
)


def instance_names(name: str, replicas: int) -> list[str]:
    return [name] if replicas == 1 else [f"{name}-{i}" for i in range(1, replicas + 1)]


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"known: {', '.join(choices)}" if choices else "declare it first"


def _check_lb(topo: Topology, name: str, svc: Any, names: list[str]) -> Iterator[tuple[Loc, str]]:
    services = topo.services
    if svc.backends not in services:
        yield (
            ("services", name, "backends"),
            f"unknown service '{svc.backends}' ({_hint(svc.backends, names)})",
        )
    else:
        backend_kind = services[svc.backends].kind
        fastcgi = getattr(svc, "protocol", "http") == "fastcgi"
        if fastcgi and backend_kind != "php-fpm":
            yield (
                ("services", name, "backends"),
                f"protocol: fastcgi needs a php-fpm service, '{svc.backends}' is {backend_kind}",
            )
        elif not fastcgi and backend_kind not in ("web", "custom"):
            hint = " (use an nginx-lb with protocol: fastcgi)" if backend_kind == "php-fpm" else ""
            yield (
                ("services", name, "backends"),
                f"HTTP backends must be web or custom, '{svc.backends}' is {backend_kind}{hint}",
            )
        for inst in getattr(svc, "weights", {}):
            if inst not in instance_names(svc.backends, services[svc.backends].replicas):
                yield (
                    ("services", name, "weights", inst),
                    f"'{inst}' is not an instance of {svc.backends}",
                )
    if svc.keepalived and svc.replicas < 2:
        yield ("services", name, "keepalived"), "a VIP needs at least 2 replicas (set replicas: 2)"


def _check_config(name: str, svc: Any, base_dir: Path) -> Iterator[tuple[Loc, str]]:
    if isinstance(svc.config, str):
        if svc.kind in NO_DEFAULT_CONFIG:
            yield (
                ("services", name, "config"),
                (
                    f"kind {svc.kind} has no default config file (write config: {{/path/in/container: {svc.config}}})"
                ),
            )
        elif not (base_dir / svc.config).is_file():
            yield (
                ("services", name, "config"),
                f"no file {base_dir / svc.config} (paths are relative to the topology file)",
            )
    elif isinstance(svc.config, dict):
        for dest, src in svc.config.items():
            if not dest.startswith("/"):
                yield (
                    ("services", name, "config", dest),
                    "the container path must be absolute (start it with /)",
                )
            if not (base_dir / src).is_file():
                yield (
                    ("services", name, "config", dest),
                    f"no file {base_dir / src} (paths are relative to the topology file)",
                )


def check_topology(topo: Topology, base_dir: Path = Path(".")) -> Iterator[tuple[Loc, str]]:
    services = topo.services
    names = sorted(services)
    instances = sorted(i for n, s in services.items() for i in instance_names(n, s.replicas))

    for name, svc in services.items():
        for i, dep in enumerate(svc.depends_on):
            if dep not in services:
                yield (
                    ("services", name, "depends_on", i),
                    f"unknown service '{dep}' ({_hint(dep, names)})",
                )
            elif dep == name:
                yield (
                    ("services", name, "depends_on", i),
                    "a service cannot depend on itself (remove it)",
                )
        if svc.kind in LB_KINDS:
            yield from _check_lb(topo, name, svc, names)
        keepalived = getattr(svc, "keepalived", None)  # any load-balancer kind may carry a VIP
        if keepalived is not None and keepalived.vip != "auto":
            yield from _check_vip(topo, name, keepalived.vip)
        if svc.kind in APP_KINDS:
            app_svc: Any = svc
            if app_svc.sessions == "redis" and not any(
                s.kind == "redis" for s in services.values()
            ):
                yield (
                    ("services", name, "sessions"),
                    "sessions: redis needs a service of kind redis (add one, or use files)",
                )
            if not any(s.kind in DB_KINDS for s in services.values()):
                yield (
                    ("services", name, "kind"),
                    "the PHP app needs a service of kind mariadb or mysql (add one)",
                )
            if app_svc.app != "builtin" and not (base_dir / app_svc.app).is_dir():
                yield (
                    ("services", name, "app"),
                    (
                        f"no directory {base_dir / app_svc.app} (give the path of your PHP app, relative to the topology file)"
                    ),
                )
        if svc.kind == "mysql" and svc.image is None:
            yield (
                ("services", name, "image"),
                "Debian ships no MySQL server (set image: to your MySQL image, or use kind: mariadb)",
            )
        yield from _check_config(name, svc, base_dir)

    for i, link in enumerate(topo.links):
        for end in ("from", "to"):
            peer = link.from_ if end == "from" else link.to
            if peer not in services:
                yield ("links", i, end), f"unknown service '{peer}' ({_hint(peer, names)})"
        if link.to in services and services[link.to].kind not in ("mariadb", "redis"):
            yield (
                ("links", i, "to"),
                "links can go to a mariadb or redis service (point it at the app's database or redis)",
            )

    cycle = _find_cycle(topo)
    if cycle:
        yield (
            ("services", cycle[0], "depends_on"),
            f"dependency cycle {' -> '.join(cycle)} (break it)",
        )

    if topo.load.target is not None and topo.load.target not in services:
        yield (
            ("load", "target"),
            f"unknown service '{topo.load.target}' ({_hint(topo.load.target, names)})",
        )
    if topo.load.target is None and not any(s.kind in LB_KINDS for s in services.values()):
        yield (
            ("load",),
            "no load balancer to send load to (add a haproxy or nginx-lb service, or set load.target)",
        )

    seen: set[str] = set()
    for i, step in enumerate(topo.chaos):
        if step.name in seen:
            yield ("chaos", i, "name"), f"duplicate step name '{step.name}' (names must be unique)"
        seen.add(step.name)
        if step.at >= topo.load.duration:
            yield (
                ("chaos", i, "at"),
                (
                    f"{step.at:g}s is not before the end of the load at {topo.load.duration:g}s "
                    "(move it earlier or lengthen load.duration)"
                ),
            )
        yield from _check_fault(topo, i, step, names, instances)

    titles: set[str] = set()
    for i, a in enumerate(topo.assertions):
        if a.title in titles:
            yield ("assertions", i), f"duplicate assertion '{a.title}' (give it a unique name:)"
        titles.add(a.title)
        if a.during.startswith("fault:") and a.during[6:] not in seen:
            step_name = a.during[6:]
            yield (
                ("assertions", i, "during"),
                f"no chaos step named '{step_name}' ({_hint(step_name, sorted(seen))})",
            )
        yield from _check_assertion(topo, i, a, names, sorted(seen), base_dir)


def _check_assertion(
    topo: Topology, i: int, a: Any, names: list[str], steps: list[str], base_dir: Path
) -> Iterator[tuple[Loc, str]]:
    loc: Loc = ("assertions", i, a.kind)
    p = a.params
    service = getattr(p, "service", None)
    if a.kind == "ejection_time" and service is not None:
        backends = [getattr(s, "backends", None) for s in topo.services.values()]
        if service not in topo.services:
            yield loc + ("service",), f"unknown service '{service}' ({_hint(service, names)})"
        elif service not in backends:
            yield (
                loc + ("service",),
                f"'{service}' is not behind a load balancer (name the LB's backends service)",
            )
    if a.kind == "failover_time" and (
        service not in topo.services or getattr(topo.services[service], "keepalived", None) is None
    ):
        vip_services = [n for n, s in topo.services.items() if getattr(s, "keepalived", None)]
        yield (
            loc + ("service",),
            f"'{service}' is not a service with a VIP ({_hint(str(service), vip_services)})",
        )
    fault = getattr(p, "fault", None)
    if fault is not None and fault not in steps:
        yield loc + ("fault",), f"no chaos step named '{fault}' ({_hint(fault, steps)})"
    if a.kind == "testinfra":
        if p.hosts not in topo.services:
            yield loc + ("hosts",), f"unknown service '{p.hosts}' ({_hint(p.hosts, names)})"
        if not (base_dir / p.module).is_file():
            yield (
                loc + ("module",),
                f"no file {base_dir / p.module} (paths are relative to the topology file)",
            )
    if a.kind == "no_lost_writes" and not any(s.kind in DB_KINDS for s in topo.services.values()):
        yield loc, "no_lost_writes needs a mariadb or mysql service"


def _check_vip(topo: Topology, name: str, vip: str) -> Iterator[tuple[Loc, str]]:
    loc: Loc = ("services", name, "keepalived", "vip")
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
    else:
        others = [
            n
            for n, s in topo.services.items()
            if n != name and getattr(getattr(s, "keepalived", None), "vip", None) == vip
        ]
        if others:
            yield loc, f"{vip} is also the VIP of '{others[0]}' (give each service its own VIP)"


def _check_fault(
    topo: Topology, i: int, step: Any, names: list[str], instances: list[str]
) -> Iterator[tuple[Loc, str]]:
    kind, params = step.fault.kind, step.fault.params
    loc: Loc = ("chaos", i, "fault", kind)
    target = getattr(params, "target", None)
    if isinstance(target, str):
        if target.startswith("vip_holder:"):
            svc = target.split(":", 1)[1]
            if svc not in topo.services or getattr(topo.services[svc], "keepalived", None) is None:
                vip_services = [
                    n for n, s in topo.services.items() if getattr(s, "keepalived", None)
                ]
                yield (
                    loc + ("target",),
                    f"'{svc}' is not a service with a VIP ({_hint(svc, vip_services)})",
                )
        elif target not in instances and target not in names:
            yield (
                loc + ("target",),
                f"unknown container or service '{target}' ({_hint(target, instances + names)})",
            )
    elif target is not None and target.service not in names:
        yield (
            loc + ("target", "service"),
            f"unknown service '{target.service}' ({_hint(target.service, names)})",
        )
    if kind == "vip_failover":
        svc = params.service
        if svc not in topo.services or getattr(topo.services[svc], "keepalived", None) is None:
            vip_services = [n for n, s in topo.services.items() if getattr(s, "keepalived", None)]
            yield (
                loc + ("service",),
                f"'{svc}' is not a service with a VIP ({_hint(svc, vip_services)})",
            )
    link = getattr(params, "link", None)
    if link is not None:
        links = [lk.name for lk in topo.links]
        if link not in links:
            yield loc + ("link",), f"no link '{link}' in links: ({_hint(link, links)})"
    if kind == "partition" and isinstance(params.peers, list):
        for j, peer in enumerate(params.peers):
            if peer not in instances and peer not in names:
                yield (
                    loc + ("peers", j),
                    f"unknown container or service '{peer}' ({_hint(peer, instances + names)})",
                )


def _find_cycle(topo: Topology) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for dep in topo.services[n].depends_on:
            if dep not in topo.services or dep == n:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in topo.services:
        if n not in state and (found := visit(n)):
            return found
    return None
