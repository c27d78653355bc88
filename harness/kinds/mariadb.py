"""MariaDB with the app's `orders` table; the app user's password is generated per run.
`kind: mysql` takes a user's MySQL image: the usual MYSQL_* env creates the database and user,
and the harness creates the table once the server answers."""

from __future__ import annotations

from harness.kinds.base import Context, apply_overrides
from harness.plan.model import ContainerPlan, ScrapeTarget, Wait
from harness.spec.models import MariaDBService

IMAGE = "data"
CONFIG_PATH = "/etc/mysql/mariadb.conf.d/99-harness.cnf"
EXPORTER_PORT = 9104
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS orders (id VARCHAR(64) PRIMARY KEY, item VARCHAR(255), node VARCHAR(64), "
    "created_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB"
)


def containers(ctx: Context, name: str, svc: MariaDBService) -> list[ContainerPlan]:
    builtin = svc.image is None
    out = []
    for inst in ctx.instances(name):
        pw = ctx.secrets["db_password"]
        env = {"DB_PASSWORD": pw, "DB_USER": "app", "DB_NAME": "app"}
        setup: list[str] = []
        if builtin:
            wait = Wait("file", "/run/harness-ready", 120)
            ctx.metrics_targets.append(
                ScrapeTarget("mysqld", f"{ctx.ips[inst]}:{EXPORTER_PORT}", inst)
            )
        else:
            env.update(
                MYSQL_ROOT_PASSWORD=pw,
                MYSQL_DATABASE="app",
                MYSQL_USER="app",
                MYSQL_PASSWORD=pw,
                MARIADB_ROOT_PASSWORD=pw,
                MARIADB_DATABASE="app",
                MARIADB_USER="app",
                MARIADB_PASSWORD=pw,
            )
            wait = Wait("exec", f'mysql -h127.0.0.1 -uapp -p"{pw}" app -e "SELECT 1"', 180)
            setup = [f'mysql -h127.0.0.1 -uapp -p"{pw}" app -e "{SCHEMA}"']
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind=svc.kind,
            image=svc.image or IMAGE,
            builtin_image=builtin,
            ip=ctx.ips[inst],
            env=env,
            command=["/usr/local/bin/mariadb-start.sh"] if builtin else None,
            wait=wait,
            setup=setup,
        )
        out.append(apply_overrides(plan, svc, ctx, CONFIG_PATH))
    return out
