"""Redis for PHP sessions, password per run."""

from __future__ import annotations

from harness.kinds.base import Context, apply_overrides
from harness.plan.model import ContainerPlan, ScrapeTarget, Wait
from harness.spec.models import RedisService

IMAGE = "data"


def containers(ctx: Context, name: str, svc: RedisService) -> list[ContainerPlan]:
    out = []
    for inst in ctx.instances(name):
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind="redis",
            image=svc.image or IMAGE,
            builtin_image=svc.image is None,
            ip=ctx.ips[inst],
            env={"REDIS_PASSWORD": ctx.secrets["redis_password"]},
            command=["/usr/local/bin/redis-start.sh"],
            wait=Wait(
                "exec", 'redis-cli --no-auth-warning -a "$REDIS_PASSWORD" ping | grep -q PONG', 60
            ),
        )
        if plan.builtin_image:
            ctx.metrics_targets.append(ScrapeTarget("redis", f"{ctx.ips[inst]}:9121", inst))
        out.append(apply_overrides(plan, svc, ctx))
    return out
