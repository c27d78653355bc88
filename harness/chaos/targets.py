"""Which instances a fault hits. A target is named when the fault fires, not when the topology is
loaded: `vip_holder:lb` must mean whoever holds the VIP *now*, and random picks come from the
run's seeded `ctx.rng`, so a run with the same seed and the same steps hits the same nodes."""

from __future__ import annotations

import math

from harness.chaos.base import FaultContext
from harness.errors import InfrastructureError
from harness.spec.models import Target, TargetSpec
from harness.watch.state import vip_holder

VIP_HOLDER = "vip_holder:"


def resolve(target: Target, ctx: FaultContext) -> list[str]:
    """Instance names, in the plan's order: `web-1`, `web` (one, seeded), `vip_holder:lb`, or a
    TargetSpec. Raises InfrastructureError when nothing matches."""
    if isinstance(target, TargetSpec):
        return _spec(target, ctx)
    if target.startswith(VIP_HOLDER):
        service = target[len(VIP_HOLDER) :]
        holder = vip_holder(ctx.containers, ctx.plan, service)
        if holder is None:
            raise InfrastructureError(f"{target}: nobody holds the VIP of '{service}' right now")
        return [holder]
    if any(c.instance == target for c in ctx.plan.containers):
        return [target]
    members = _members(target, ctx)
    return [ctx.rng.choice(members)]


def describe(instances: list[str]) -> str:
    return ", ".join(instances)


def _members(service: str, ctx: FaultContext) -> list[str]:
    members = [c.instance for c in ctx.plan.instances(service)]
    if not members:
        known = sorted(
            {c.instance for c in ctx.plan.containers} | {c.service for c in ctx.plan.containers}
        )
        raise InfrastructureError(
            f"unknown container or service '{service}' (known: {', '.join(known)})"
        )
    return members


def _spec(spec: TargetSpec, ctx: FaultContext) -> list[str]:
    members = _members(spec.service, ctx)
    if spec.pick == "all":
        return members
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
    chosen = set(ctx.rng.sample(members, n))
    return [m for m in members if m in chosen]
