"""Which instances a fault hits. A target is named when the fault fires, not when the topology is
loaded: `vip_holder:lb` must mean whoever holds the VIP *now*, and random picks come from the
run's seeded `ctx.rng`, so a run with the same seed and the same steps hits the same nodes.

A service target (`web`, or `{service: web, pick: ...}`) picks among the service's *live*
instances only: one an earlier step killed or stopped is never hit again. The picks are the
ones `live_instances` / `harness.spec.liveness.plan` work out from the schedule alone (and
validation checks): the same seeded draws over the same live instances, in plan order. At run
time "live" is read from Docker (not running = exited, created, dead or removing), which is
what the schedule predicts whenever each fault did what it says; a node that died on its own
is skipped too, instead of being "killed" again."""

from __future__ import annotations

from docker.errors import APIError, NotFound

from harness.chaos.base import FaultContext
from harness.errors import InfrastructureError
from harness.runtime.probe import vip_holder
from harness.spec import liveness
from harness.spec.models import Target, TargetSpec, Topology

VIP_HOLDER = "vip_holder:"
DOWN = ("exited", "created", "dead", "removing")


def resolve(target: Target, ctx: FaultContext) -> list[str]:
    """Instance names, in the plan's order: `web-1`, `web` (one live instance, seeded),
    `vip_holder:lb`, or a TargetSpec (among the live instances). Raises InfrastructureError when
    nothing matches or no instance of the service is alive."""
    if isinstance(target, TargetSpec):
        return liveness.pick(_live(target.service, ctx), target, ctx.rng)
    if target.startswith(VIP_HOLDER):
        service = target[len(VIP_HOLDER) :]
        holder = vip_holder(ctx.containers, ctx.plan, service)
        if holder is None:
            raise InfrastructureError(f"{target}: nobody holds the VIP of '{service}' right now")
        return [holder]
    if any(c.instance == target for c in ctx.plan.containers):
        return [target]
    return liveness.pick(_live(target, ctx), None, ctx.rng)


def live_instances(topo: Topology, step_index: int, k: int = 1) -> dict[str, list[str]]:
    """Service -> its instances alive just before the k-th injection of `topo.chaos[step_index]`
    fires, from the schedule alone (pure: no Docker). What `resolve` picks among at that
    moment, when every earlier fault did what it says."""
    return liveness.live_instances(topo, step_index, k)


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


def _running(ctx: FaultContext, instance: str) -> bool:
    c = ctx.containers.get(instance)
    if c is None:
        return False
    try:
        c.reload()
    except NotFound:
        return False
    except APIError as exc:
        raise InfrastructureError(
            f"cannot tell whether {instance} is running: {exc.explanation}"
        ) from None
    return str(c.status) not in DOWN


def _live(service: str, ctx: FaultContext) -> list[str]:
    members = _members(service, ctx)
    live = [m for m in members if _running(ctx, m)]
    if not live:
        raise InfrastructureError(
            f"no live instance of '{service}' to pick: {', '.join(members)} are all down"
        )
    return live
