"""Which containers are alive when each fault fires, worked out from the schedule alone.

A `kill` or `stop` takes its containers down: for good when the step has no `for:` (it is
only undone after the load, by the final rollback) or `restore: false` (a kill's default: a
windowed kill without `restore: true` leaves the node dead too), otherwise until its window
ends (the rollback starts it again). Nothing else takes a container down: `restart` brings it
straight back, `pause` freezes it (still there), `process_kill` and `partition` leave it
running, and `vip_failover` hits whoever holds the VIP then, which only the run knows.

Walking the injections in the order the schedule fires them (by offset; ties in file order),
with a `random.Random(topology.seed)` drawn from exactly as `harness.chaos.targets.resolve`
draws at run time (a service target picks among the service's live instances, in plan order),
gives every injection's targets before anything runs, so validation can reject a step that
would hit a dead container, and the run hits what validation saw.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.spec.models import ChaosStep, TargetSpec, Topology

VIP_HOLDER = "vip_holder:"
TAKES_DOWN = ("kill", "stop")
PAST_TENSE = {"kill": "killed", "stop": "stopped"}


def instance_names(name: str, replicas: int) -> list[str]:
    """Containers are named `<service>-<n>`, or `<service>` when alone."""
    return [name] if replicas == 1 else [f"{name}-{i}" for i in range(1, replicas + 1)]


@dataclass(frozen=True)
class Injection:
    offset: float  # seconds after the load started
    index: int  # the step's index in the topology's chaos list
    k: int  # which injection of the step, from 1
    name: str  # `name`, `name #2`, ... as journaled
    step: ChaosStep


def injections(steps: Sequence[ChaosStep]) -> list[Injection]:
    """Every injection, in the order the schedule fires them (stable: ties keep file order)."""
    out = [
        Injection(offset, i, k + 1, name, step)
        for i, step in enumerate(steps)
        for k, (offset, name) in enumerate(step.injections())
    ]
    return sorted(out, key=lambda inj: inj.offset)


@dataclass(frozen=True)
class Removal:
    by: str  # the injection that took the container down
    kind: str  # kill | stop
    at: float
    until: float  # math.inf: for the rest of the run


@dataclass
class Planned:
    """One injection as the schedule will fire it."""

    injection: Injection
    live: dict[str, list[str]]  # service -> its instances alive just before it fires
    hits: list[str] | None  # the containers it hits; None when only the run can tell
    problem: tuple[tuple[Any, ...], str] | None = None  # (field path within the step, message)
    down: dict[str, Removal] = field(default_factory=dict)  # what is down just before it fires


def pick(members: list[str], spec: TargetSpec | None, rng: random.Random) -> list[str]:
    """The instances a service target hits among `members` (the live ones, in plan order):
    one at random for a bare service name (`spec` None), else as the TargetSpec says."""
    if spec is None:
        return [rng.choice(members)]
    if spec.pick == "all":
        return list(members)
    if spec.count is not None:
        n = spec.count
    elif spec.percent is not None:
        n = math.ceil(round(len(members) * spec.percent / 100, 9))  # 10 x 30% is 3, not 4
    else:
        n = 1
    n = max(1, min(n, len(members)))
    if spec.pick == "first":
        return members[:n]
    if spec.pick == "last":
        return members[-n:]
    chosen = set(rng.sample(members, n))
    return [m for m in members if m in chosen]


def _until(step: ChaosStep, offset: float) -> float:
    restore = getattr(step.fault.params, "restore", False)
    if step.for_ is None or not restore:
        return math.inf
    return offset + step.for_


def _gone(inst: str, r: Removal) -> str:
    how = f"step '{r.by}' {PAST_TENSE[r.kind]} it at {r.at:g}s"
    if r.until == math.inf:
        return f"{inst} is already down: {how}, and nothing starts it again during the load"
    return f"{inst} is down: {how}, until its window ends at {r.until:g}s"


def _fix_instance(inst: str, service: str | None, r: Removal) -> str:
    other = f"target another instance or the service '{service}'" if service else "drop this step"
    if r.until == math.inf:
        return f"({other}, or fire this step before {r.at:g}s)"
    return f"({other}, or fire this step outside {r.at:g}s to {r.until:g}s)"


def _none_left(service: str, down: dict[str, Removal], members: list[str]) -> str:
    why = "; ".join(f"{m} by step '{down[m].by}' at {down[m].at:g}s" for m in members if m in down)
    return (
        f"no live instance of '{service}' is left to pick, all are down ({why}) "
        f"(add replicas to '{service}', fire this step earlier, or drop one of those steps)"
    )


def plan(topo: Topology) -> list[Planned]:
    """Every injection of `topo.chaos` that fires before the load ends, in firing order, with
    the containers alive before it, what it hits and, if it would hit a dead container, the
    problem. Unknown names are skipped (the cross-reference checks report them)."""
    members = {n: instance_names(n, s.replicas) for n, s in topo.services.items()}
    service_of = {i: n for n, ms in members.items() for i in ms}
    links = {lk.name: lk for lk in topo.links}
    rng = random.Random(topo.seed)
    down: dict[str, Removal] = {}
    out: list[Planned] = []
    for inj in injections(topo.chaos):
        if inj.offset >= topo.load.duration:
            break  # never fires: the schedule stops with the load (validation reports it)
        step, kind = inj.step, inj.step.fault.kind
        params = inj.step.fault.params
        for inst in [i for i, r in down.items() if r.until < inj.offset]:
            del down[inst]  # its window's rollback started it again
        live = {n: [i for i in ms if i not in down] for n, ms in members.items()}
        planned = Planned(inj, live, None, down=dict(down))
        target = getattr(params, "target", None)
        where: tuple[Any, ...] = ("fault", kind, "target")
        service: str | None = None
        if isinstance(target, TargetSpec):
            service, spec = target.service, target
            where += ("service",)
        elif isinstance(target, str) and target.startswith(VIP_HOLDER):
            service, spec = target[len(VIP_HOLDER) :], None
        elif isinstance(target, str) and target in service_of:  # an instance wins, as at run time
            if target in down:
                owner = service_of[target]
                r = down[target]
                planned.problem = (
                    where,
                    f"{_gone(target, r)} "
                    f"{_fix_instance(target, owner if len(members[owner]) > 1 else None, r)}",
                )
            else:
                planned.hits = [target]
        elif isinstance(target, str):
            service, spec = target, None
        elif kind == "vip_failover":
            service, spec, where = params.service, None, ("fault", kind, "service")
        elif getattr(params, "link", None) in links:
            service, spec, where = links[params.link].to, None, ("fault", kind, "link")
        if service is not None and service in members:
            if not live[service]:
                planned.problem = (where, _none_left(service, down, members[service]))
            elif isinstance(target, TargetSpec) or (isinstance(target, str) and service == target):
                planned.hits = pick(live[service], spec, rng)
        if kind in TAKES_DOWN and planned.hits and planned.problem is None:
            until = _until(step, inj.offset)
            for inst in planned.hits:
                down[inst] = Removal(inj.name, kind, inj.offset, until)
        out.append(planned)
    return out


def live_instances(topo: Topology, step_index: int, k: int = 1) -> dict[str, list[str]]:
    """Service -> its instances alive just before the k-th injection of `topo.chaos[step_index]`
    fires (in plan order), from the schedule alone."""
    for planned in plan(topo):
        if planned.injection.index == step_index and planned.injection.k == k:
            return planned.live
    step = topo.chaos[step_index]  # IndexError for a step that does not exist
    if 1 <= k <= step.repeat:
        at = step.injections()[k - 1][0]
        raise ValueError(
            f"injection #{k} of step '{step.name}' never fires: at {at:g}s the load is over"
        )
    times = "once" if step.repeat == 1 else f"{step.repeat} times"
    raise ValueError(f"step '{step.name}' has no injection #{k} (it is injected {times})")
