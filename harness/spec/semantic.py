"""Cross-reference checks pydantic cannot do alone: dangling names, cycles, kinds that need peers."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from harness.spec.models import HAProxyService, Topology, WebService

Loc = tuple[Any, ...]

LB_KINDS = ("haproxy",)


def instance_names(name: str, replicas: int) -> list[str]:
    return [name] if replicas == 1 else [f"{name}-{i}" for i in range(1, replicas + 1)]


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"known: {', '.join(choices)}" if choices else "declare it first"


def check_topology(topo: Topology) -> Iterator[tuple[Loc, str]]:
    services = topo.services
    names = sorted(services)
    instances = sorted(i for n, s in services.items() for i in instance_names(n, s.replicas))

    for name, svc in services.items():
        for i, dep in enumerate(svc.depends_on):
            if dep not in services:
                yield ("services", name, "depends_on", i), f"unknown service '{dep}' ({_hint(dep, names)})"
            elif dep == name:
                yield ("services", name, "depends_on", i), "a service cannot depend on itself (remove it)"
        if isinstance(svc, HAProxyService):
            if svc.backends not in services:
                yield ("services", name, "backends"), f"unknown service '{svc.backends}' ({_hint(svc.backends, names)})"
            if svc.keepalived and svc.replicas < 2:
                yield ("services", name, "keepalived"), "a VIP needs at least 2 replicas (set replicas: 2)"
        if isinstance(svc, WebService) and svc.sessions == "redis" and not any(
            s.kind == "redis" for s in services.values()
        ):
            yield ("services", name, "sessions"), "sessions: redis needs a service of kind redis (add one, or use files)"
        if isinstance(svc, WebService) and not any(s.kind == "mariadb" for s in services.values()):
            yield ("services", name, "kind"), "the web app needs a service of kind mariadb (add one)"

    cycle = _find_cycle(topo)
    if cycle:
        yield ("services", cycle[0], "depends_on"), f"dependency cycle {' -> '.join(cycle)} (break it)"

    if topo.load.target is not None and topo.load.target not in services:
        yield ("load", "target"), f"unknown service '{topo.load.target}' ({_hint(topo.load.target, names)})"
    if topo.load.target is None and not any(s.kind in LB_KINDS for s in services.values()):
        yield ("load",), "no load balancer to send load to (add a haproxy service or set load.target)"

    seen: set[str] = set()
    for i, step in enumerate(topo.chaos):
        if step.name in seen:
            yield ("chaos", i, "name"), f"duplicate step name '{step.name}' (names must be unique)"
        seen.add(step.name)
        if step.at >= topo.load.duration:
            yield ("chaos", i, "at"), f"{step.at:g}s is not before the end of the load ({topo.load.duration:g}s)"
        target = getattr(step.fault.params, "target", None)
        if target is not None and target not in instances:
            yield ("chaos", i, "fault", step.fault.kind, "target"), (
                f"unknown container '{target}' ({_hint(target, instances)})"
            )

    titles: set[str] = set()
    for i, a in enumerate(topo.assertions):
        if a.title in titles:
            yield ("assertions", i), f"duplicate assertion '{a.title}' (give it a unique name:)"
        titles.add(a.title)
        if a.during.startswith("fault:") and a.during[6:] not in seen:
            yield ("assertions", i, "during"), f"no chaos step named '{a.during[6:]}'"


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
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in topo.services:
        if n not in state and (found := visit(n)):
            return found
    return None
