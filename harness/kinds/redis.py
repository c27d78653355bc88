"""Redis for PHP sessions, password per run.

With `replicas: N` the first instance is the master and the others replicate from it. With
`sentinel:`, a Redis Sentinel runs beside every instance (Debian's redis-sentinel), and
`keepalived:` carries a VIP the app connects to: its tracking script passes only on the
instance whose `ROLE` is master, so the VIP follows the master Sentinel elects."""

from __future__ import annotations

from harness.kinds import keepalived
from harness.kinds.base import Context, apply_overrides
from harness.kinds.descriptor import Descriptor, Exporter
from harness.plan.model import ContainerPlan, ScrapeTarget, Wait
from harness.spec.models import RedisService

IMAGE = "data"
TRACK_MASTER = "/usr/local/bin/redis-is-master.sh"
EXPORTER = Exporter("redis", 9121)
SENTINEL_EXPORTER_PORT = 9355  # a second redis exporter, asking the Sentinel beside it


def containers(ctx: Context, name: str, svc: RedisService) -> list[ContainerPlan]:
    out = []
    for index, inst in enumerate(ctx.instances(name)):
        env = {"REDIS_PASSWORD": ctx.secrets["redis_password"]}
        env.update(replication_env(ctx, name, svc, index))
        files: dict[str, str] = {}
        caps: list[str] = []
        if svc.keepalived is not None:
            files.update(
                keepalived.files(
                    ctx, name, svc.keepalived, index, "redis-server", track_script=TRACK_MASTER
                )
            )
            caps = keepalived.CAPS
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind="redis",
            image=svc.image or IMAGE,
            builtin_image=svc.image is None,
            ip=ctx.ips[inst],
            env=env,
            files=files,
            cap_add=caps,
            command=["/usr/local/bin/redis-start.sh"],
            wait=Wait(
                "exec", 'redis-cli --no-auth-warning -a "$REDIS_PASSWORD" ping | grep -q PONG', 60
            ),
        )
        if plan.builtin_image:
            ctx.metrics_targets.append(EXPORTER.target(ctx.ips[inst], inst))
            if svc.sentinel is not None:  # Sentinel's view of the master (redis_sentinel_*)
                ctx.metrics_targets.append(
                    ScrapeTarget("sentinel", f"{ctx.ips[inst]}:{SENTINEL_EXPORTER_PORT}", inst)
                )
        out.append(apply_overrides(plan, svc, ctx))
    return out


def replication_env(ctx: Context, name: str, svc: RedisService, index: int) -> dict[str, str]:
    """What images/data/redis-start.sh reads: whom to replicate from, and Sentinel's settings."""
    env: dict[str, str] = {}
    master = ctx.ips[ctx.instances(name)[0]]
    if index > 0:
        env["REDIS_MASTER_HOST"] = master
    if svc.sentinel is not None:
        env.update(
            REDIS_SENTINEL_MASTER=master,
            REDIS_SENTINEL_QUORUM=str(svc.sentinel.quorum),
            REDIS_SENTINEL_DOWN_AFTER_MS=str(max(1, round(svc.sentinel.down_after * 1000))),
            REDIS_SENTINEL_FAILOVER_TIMEOUT_MS=str(
                max(1, round(svc.sentinel.failover_timeout * 1000))
            ),
            REDIS_ANNOUNCE_IP=ctx.ips[ctx.instances(name)[index]],
        )
    return env


DESCRIPTOR = Descriptor(
    image=IMAGE, ports={"redis": 6379, "metrics": EXPORTER.port}, exporter=EXPORTER
)
