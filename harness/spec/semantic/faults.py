"""Chaos steps: their targets, links, processes and timing, and references to them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from harness.roles import Role, kinds_of
from harness.spec.liveness import instance_names
from harness.spec.models import ChaosStep, Topology, injection_name
from harness.spec.semantic.common import (
    GATEWAY_KINDS,
    RESTARTABLE,
    TOXIC_COMMON,
    TOXIC_FIELDS,
    TOXIC_REQUIRED,
    Loc,
    hint,
)

_REPEAT_REF = re.compile(r"^(?P<name>.*?)\s*#(?P<k>\d+)$")


def resolve_fault_ref(
    ref: str, steps: dict[str, ChaosStep], prefix: str = ""
) -> tuple[str | None, str | None]:
    """(the injection's name as the schedule journals it, problem): `NAME` is the step's first
    injection, `NAME#2` or `NAME #2` its second (for a step with repeat: 2 or more)."""
    ref = ref.strip()
    if ref in steps:
        return ref, None
    m = _REPEAT_REF.match(ref)
    if m and m["name"] in steps:
        name, k, repeat = m["name"], int(m["k"]), steps[m["name"]].repeat
        if 1 <= k <= repeat:
            return injection_name(name, k), None
        if repeat == 1:
            return None, (
                f"step '{name}' is injected once, so it has no #{k} "
                f"(write {prefix}{name}, or give the step repeat: {max(k, 2)})"
            )
        return None, (
            f"step '{name}' is injected {repeat} times, so it has no #{k} "
            f"(use #1 to #{repeat}, e.g. {prefix}{name}#{repeat})"
        )
    return None, f"no chaos step named '{ref}' ({hint(ref, sorted(steps))})"


def check_timing(topo: Topology, i: int, step: ChaosStep) -> Iterator[tuple[Loc, str]]:
    """Every injection fires, and every judged window ends, before the load ends: a fault (or
    the span a kill is judged over) that outlives the load would be judged against no traffic."""
    load_end = topo.load.duration
    last_at = step.injections()[-1][0]
    n = step.repeat
    if last_at >= load_end:
        when = "after" if last_at > load_end else "as"
        yield (
            ("chaos", i, "repeat"),
            f"injection #{n} would fire at {last_at:g}s, {when} the load ends at {load_end:g}s, "
            "so it would never run (lower repeat: or every:, or lengthen load.duration)",
        )
        return
    span, key = (step.for_, "for") if step.for_ is not None else (step.window, "window")
    if span is None:
        return
    end = last_at + span
    if end >= load_end:
        what = "the fault" if key == "for" else "the window it is judged over"
        if n > 1:
            what = f"{'its' if key == 'for' else 'the window of its'} last injection (#{n})"
        when = "after" if end > load_end else "as"
        fix = f"shorten {key}:" if n == 1 else f"shorten {key}:, every: or repeat:,"
        yield (
            ("chaos", i, key),
            f"{what} ends at {end:g}s, {when} the load ends at {load_end:g}s: the fault would be "
            f"judged against no traffic ({fix} or lengthen load.duration)",
        )


def check_fault(
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
                    f"'{svc}' is not a service with a VIP ({hint(svc, vip_services)})",
                )
        elif target not in instances and target not in names:
            yield (
                loc + ("target",),
                f"unknown container or service '{target}' ({hint(target, instances + names)})",
            )
    elif target is not None and target.service not in names:
        yield (
            loc + ("target", "service"),
            f"unknown service '{target.service}' ({hint(target.service, names)})",
        )
    if kind == "vip_failover":
        svc = params.service
        if svc not in topo.services or getattr(topo.services[svc], "keepalived", None) is None:
            vip_services = [n for n, s in topo.services.items() if getattr(s, "keepalived", None)]
            yield (
                loc + ("service",),
                f"'{svc}' is not a service with a VIP ({hint(svc, vip_services)})",
            )
    link = getattr(params, "link", None)
    if link is not None:
        links = [lk.name for lk in topo.links]
        if link not in links:
            yield loc + ("link",), f"no link '{link}' in links: ({hint(link, links)})"
        yield from _check_toxic(loc, kind, params)
    yield from _check_target_kind(topo, loc, target)
    if target is not None and not isinstance(target, str):
        if target.count is not None and target.percent is not None:
            yield loc + ("target", "percent"), "count and percent both say how many (keep one)"
        if target.pick == "all" and (target.count is not None or target.percent is not None):
            what = "count" if target.count is not None else "percent"
            yield (
                loc + ("target", what),
                f"pick: all takes every instance, so {what} means nothing (remove it, or "
                "pick: random, first or last)",
            )
    if target is not None and not isinstance(target, str) and target.service in topo.services:
        replicas = topo.services[target.service].replicas
        if target.count is not None and target.count > replicas:
            yield (
                loc + ("target", "count"),
                f"count: {target.count} but '{target.service}' has {replicas} "
                f"replica{'s' if replicas > 1 else ''} (use at most {replicas}, or pick: all)",
            )
    if kind == "process_kill":
        yield from _check_process(topo, loc, params)
    if kind == "heartbeat_freeze":
        yield from _check_heartbeat_freeze(topo, loc, params.target)
    if kind == "partition" and isinstance(params.peers, list):
        for j, peer in enumerate(params.peers):
            if peer not in instances and peer not in names:
                yield (
                    loc + ("peers", j),
                    f"unknown container or service '{peer}' ({hint(peer, instances + names)})",
                )


def _check_heartbeat_freeze(topo: Topology, loc: Loc, target: Any) -> Iterator[tuple[Loc, str]]:
    """Only an instance that registers (a web node a gateway discovers) has heartbeats."""
    name = target if isinstance(target, str) else target.service
    owner = next(
        (n for n, s in topo.services.items() if name == n or name in instance_names(n, s.replicas)),
        None,
    )
    if owner is None:
        return  # an unknown target is reported on its own
    web = kinds_of(Role.WEB)
    discovered = [
        b
        for s in topo.services.values()
        if s.kind in GATEWAY_KINDS
        and (b := getattr(s, "backends", None)) in topo.services
        and topo.services[b].kind in web
    ]
    if owner not in discovered:
        where = loc + (("target",) if isinstance(target, str) else ("target", "service"))
        fix = (
            f"target an instance of {', '.join(str(d) for d in discovered)}"
            if discovered
            else "put a gateway in front of it, or use pause to freeze the whole node"
        )
        yield (
            where,
            f"'{name}' sends no heartbeats: only web instances a gateway discovers register in "
            f"the registry ({fix})",
        )


def _check_toxic(loc: Loc, kind: str, params: Any) -> Iterator[tuple[Loc, str]]:
    need = TOXIC_REQUIRED.get(kind)
    if need is not None and getattr(params, need) is None:
        yield loc + (need,), f"{kind} needs {need} (add e.g. {need}: {_example(need)})"
    allowed = set(TOXIC_FIELDS[kind]) | set(TOXIC_COMMON)
    for field in sorted(params.model_fields_set - allowed):
        uses = ", ".join(TOXIC_FIELDS[kind]) or "no setting but link, stream and toxicity"
        yield (
            loc + (field,),
            f"{kind} takes no {field}, it would be ignored (remove it; {kind} takes {uses})",
        )


def _example(field: str) -> str:
    return {"latency": "300ms", "rate": "100", "average_size": "64", "bytes": "1024"}.get(
        field, "1"
    )


def _check_target_kind(topo: Topology, loc: Loc, target: Any) -> Iterator[tuple[Loc, str]]:
    """Faults on the harness's own Prometheus would leave nothing to judge the run with."""
    if target is None:
        return
    name = target if isinstance(target, str) else target.service
    services = topo.services
    owner = next(
        (n for n, s in services.items() if name == n or name in instance_names(n, s.replicas)),
        None,
    )
    if owner is not None and services[owner].kind in kinds_of(Role.OBSERVER):
        where = loc + (("target",) if isinstance(target, str) else ("target", "service"))
        yield (
            where,
            f"'{name}' is the run's Prometheus, which judges the run: a fault on it leaves "
            "nothing to judge with (target a service of the stack)",
        )


def _check_process(topo: Topology, loc: Loc, params: Any) -> Iterator[tuple[Loc, str]]:
    if params.restore and params.process not in RESTARTABLE:
        yield (
            loc + ("process",),
            f"the harness cannot start '{params.process}' again when the window ends "
            f"(use one of {', '.join(RESTARTABLE)}, or set restore: false to leave it dead)",
        )
        return
    kinds = RESTARTABLE.get(params.process)
    target = params.target
    name = target if isinstance(target, str) else target.service
    owner = next(
        (
            n
            for n, s in topo.services.items()
            if name in (n, f"vip_holder:{n}") or name in instance_names(n, s.replicas)
        ),
        None,
    )
    if kinds is None or owner is None:
        return
    svc = topo.services[owner]
    if svc.image is not None or svc.command is not None:
        return  # the user's image or command: only the run can tell what runs there
    runs = svc.kind in kinds and (
        params.process != "keepalived" or getattr(svc, "keepalived", None)
    )
    if not runs:
        yield (
            loc + ("process",),
            f"no {params.process} runs in the {svc.kind} containers of '{owner}', so there is "
            f"nothing to kill (target a service that runs it: {', '.join(kinds)})",
        )
