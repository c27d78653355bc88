"""Web node: Nginx + PHP-FPM running the reference app (or the user's `app:`), sessions in Redis
or local files, orders in MariaDB."""

from __future__ import annotations

from harness.kinds.base import Context, apply_overrides, render
from harness.plan.model import ContainerPlan, Wait
from harness.spec.models import WebService

IMAGE = "web"


def containers(ctx: Context, name: str, svc: WebService) -> list[ContainerPlan]:
    redis = ctx.first_of_kind("redis")
    db = ctx.first_of_kind("mariadb")
    assert db is not None  # checked by the spec's semantic pass
    redis_ip, redis_port = ctx.endpoint(name, redis, 6379) if redis else ("", 6379)
    db_ip, db_port = ctx.endpoint(name, db, 3306)
    checks = ["db"] + (["redis"] if svc.sessions == "redis" else [])
    php_ini = render(
        "php-harness.ini.j2", sessions=svc.sessions, redis_ip=redis_ip, redis_port=redis_port,
        redis_password=ctx.secrets["redis_password"], db_timeout=svc.db_timeout,
    )
    out = []
    for inst in ctx.instances(name):
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
        }
        pool = render("php-fpm-pool.conf.j2", env=env)
        files = {
            "/etc/php/8.2/fpm/conf.d/99-harness.ini": php_ini,
            "/etc/php/8.2/fpm/pool.d/www.conf": pool,
            "/etc/nginx/conf.d/app.conf": render("nginx-web.conf.j2"),
        }
        plan = ContainerPlan(
            instance=inst, service=name, kind="web", image=svc.image or IMAGE,
            builtin_image=svc.image is None, ip=ctx.ips[inst], env=env, files=files,
            wait=Wait("http", f"http://{ctx.ips[inst]}/health", 90),
        )
        out.append(apply_overrides(plan, svc))
    return out
