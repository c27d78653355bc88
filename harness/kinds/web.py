"""Web node: Nginx + PHP-FPM running the reference app (or the user's `app:`), sessions in Redis
or local files, orders in MariaDB. `php_env` is shared with the bare php-fpm kind."""

from __future__ import annotations

from typing import Any

from harness.kinds import registry
from harness.kinds.base import DB_KINDS, Context, app_dirs, apply_overrides, render
from harness.kinds.descriptor import Descriptor
from harness.plan.model import ContainerPlan, Wait
from harness.spec.models import WebService

IMAGE = "web"
CONFIG_PATH = "/etc/nginx/conf.d/app.conf"
# GET /health/live is served by a pool of its own, so an LB's liveness check never waits for a
# worker of the app's pool (all of them can be busy on a slow database).
HEALTH_POOL = "/etc/php/8.2/fpm/pool.d/health.conf"
HEALTH_SOCKET = "/run/php/health.sock"


def php_files(
    ctx: Context, name: str, svc: Any, inst: str, listen: str, pool: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """The PHP ini and FPM pool for one instance, and the env the app reads."""
    redis = ctx.first_of_kind("redis")
    db = ctx.first_of_kind(*DB_KINDS)
    assert db is not None  # checked by the spec's semantic pass
    redis_ip, redis_port = ctx.endpoint(name, redis, 6379) if redis else ("", 6379)
    db_ip, db_port = ctx.endpoint(name, db, 3306)
    checks = ["db"] + (["redis"] if svc.sessions == "redis" else [])
    env = {
        "NODE_NAME": inst,
        "DB_HOST": db_ip,
        "DB_PORT": str(db_port),
        "DB_USER": "app",
        "DB_NAME": "app",
        "DB_PASSWORD": ctx.secrets["db_password"],
        "DB_TIMEOUT": str(max(1, int(svc.db_timeout))),
        "REDIS_HOST": redis_ip,
        "REDIS_PORT": str(redis_port),
        "REDIS_PASSWORD": ctx.secrets["redis_password"],
        "HEALTH_CHECKS": ",".join(checks),
        "DB_READ_HOSTS": read_hosts(ctx, db, getattr(svc, "db_reads", None)),
    }
    ini = render(
        "php-harness.ini.j2",
        sessions=svc.sessions,
        redis_ip=redis_ip,
        redis_port=redis_port,
        redis_password=ctx.secrets["redis_password"],
        db_timeout=svc.db_timeout,
    )
    files = {
        "/etc/php/8.2/fpm/conf.d/99-harness.ini": ini,
        "/etc/php/8.2/fpm/pool.d/www.conf": render(
            "php-fpm-pool.conf.j2", env=env, listen=listen, **pool
        ),
    }
    return files, env


def read_hosts(ctx: Context, db: str, db_reads: str | None) -> str:
    """The app's read path (`db_reads: replicas`): every replica of the database, host:port,
    straight to the instance (the replication channel's delay is what makes a read stale)."""
    if db_reads != "replicas":
        return ""
    return ",".join(f"{ctx.ips[inst]}:3306" for inst in ctx.instances(db)[1:])


def containers(ctx: Context, name: str, svc: WebService) -> list[ContainerPlan]:
    out = []
    for inst in ctx.instances(name):
        files, env = php_files(
            ctx,
            name,
            svc,
            inst,
            "/run/php/php8.2-fpm.sock",
            {
                "pm": "static",
                "max_children": svc.max_children,
                "listen_backlog": svc.listen_backlog,
            },
        )
        files[CONFIG_PATH] = render("nginx-web.conf.j2", health_socket=HEALTH_SOCKET)
        files[HEALTH_POOL] = render(
            "php-fpm-health-pool.conf.j2", listen=HEALTH_SOCKET, max_children=2, node=inst
        )
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind="web",
            image=svc.image or IMAGE,
            builtin_image=svc.image is None,
            ip=ctx.ips[inst],
            env=env | registry.registration_env(ctx, name, inst),  # behind a gateway
            files=files,
            dirs=app_dirs(ctx, svc.app),
            wait=Wait("http", f"http://{ctx.ips[inst]}/health", 90),
        )
        out.append(apply_overrides(plan, svc, ctx, CONFIG_PATH))
    return out


DESCRIPTOR = Descriptor(image=IMAGE, ports={"http": 80})
