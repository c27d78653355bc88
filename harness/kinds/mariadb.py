"""MariaDB with the app's `orders` table; the app user's password is generated per run."""

from __future__ import annotations

from harness.kinds.base import Context, apply_overrides
from harness.plan.model import ContainerPlan, Wait
from harness.spec.models import MariaDBService

IMAGE = "data"


def containers(ctx: Context, name: str, svc: MariaDBService) -> list[ContainerPlan]:
    out = []
    for inst in ctx.instances(name):
        plan = ContainerPlan(
            instance=inst, service=name, kind="mariadb", image=svc.image or IMAGE,
            builtin_image=svc.image is None, ip=ctx.ips[inst],
            env={"DB_PASSWORD": ctx.secrets["db_password"], "DB_USER": "app", "DB_NAME": "app"},
            command=["/usr/local/bin/mariadb-start.sh"],
            wait=Wait("file", "/run/harness-ready", 120),
        )
        out.append(apply_overrides(plan, svc))
    return out
