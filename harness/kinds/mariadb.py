"""MariaDB with the app's `orders` table; the app user's password is generated per run.
`kind: mysql` takes a user's MySQL image: the usual MYSQL_* env creates the database and user,
and the harness creates the table once the server answers.

With `replicas: N` (kind: mariadb), the first instance is the primary and the others replicate
from it with GTID (`replication.mode`: async, or MariaDB's built-in semi-sync). A link from the
service to itself (`links: [{from: mysql, to: mysql}]`) is the replication channel: replicas
reach the primary through Toxiproxy, so a fault can delay it. `keepalived:` puts a VIP on the
primary; Keepalived tracks mysqld and its notify hook promotes the replica that takes the VIP
over (images/data/db-promote.sh)."""

from __future__ import annotations

from collections.abc import Mapping

from harness.kinds import keepalived
from harness.kinds.base import Context, apply_overrides
from harness.kinds.descriptor import Descriptor, Exporter
from harness.plan.model import ContainerPlan, Wait
from harness.spec.models import MariaDBService

IMAGE = "data"
CONFIG_PATH = "/etc/mysql/mariadb.conf.d/99-harness.cnf"
EXPORTER_PORT = 9104
EXPORTER = Exporter("mysqld", EXPORTER_PORT)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS orders (id VARCHAR(64) PRIMARY KEY, item VARCHAR(255), node VARCHAR(64), "
    "created_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3)) ENGINE=InnoDB"
)


def containers(ctx: Context, name: str, svc: MariaDBService) -> list[ContainerPlan]:
    builtin = svc.image is None
    out = []
    for index, inst in enumerate(ctx.instances(name)):
        pw = ctx.secrets["db_password"]
        env = {"DB_PASSWORD": pw, "DB_USER": "app", "DB_NAME": "app"}
        env.update(replication_env(ctx, name, svc, index))
        files: dict[str, str] = {}
        caps: list[str] = []
        if svc.keepalived is not None:
            files.update(keepalived.files(ctx, name, svc.keepalived, index, process="mysqld"))
            caps = keepalived.CAPS
        setup: list[str] = []
        if builtin:
            wait = Wait("file", "/run/harness-ready", 120)
            ctx.metrics_targets.append(EXPORTER.target(ctx.ips[inst], inst))
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
            files=files,
            cap_add=caps,
            command=["/usr/local/bin/mariadb-start.sh"] if builtin else None,
            wait=wait,
            setup=setup,
        )
        out.append(apply_overrides(plan, svc, ctx, CONFIG_PATH))
    return out


def replicated(svc: MariaDBService) -> bool:
    return svc.kind == "mariadb" and (svc.replicas > 1 or svc.replication is not None)


def replication_env(ctx: Context, name: str, svc: MariaDBService, index: int) -> dict[str, str]:
    """What images/data/mariadb-start.sh reads to set up GTID replication from instance 1."""
    if not replicated(svc):
        return {}
    repl = svc.replication
    env = {"DB_SERVER_ID": str(index + 1), "DB_REPL_MODE": repl.mode if repl else "async"}
    if repl is not None and repl.mode == "semi_sync":
        env["DB_SEMI_SYNC_WAIT_POINT"] = repl.wait_point.upper()
        env["DB_SEMI_SYNC_TIMEOUT_MS"] = str(max(1, round(repl.timeout * 1000)))
    if index > 0:
        host, port = ctx.endpoint(name, name, 3306)  # through the replication link if any
        env.update(DB_PRIMARY_HOST=host, DB_PRIMARY_PORT=str(port))
    return env


def read_orders(secrets: Mapping[str, str]) -> list[str]:
    """The ids of the stored orders, one a line, run inside a database container."""
    pw = secrets["db_password"]
    return [
        "mysql",
        "-h127.0.0.1",
        "-uapp",
        f"-p{pw}",
        "-N",
        "-B",
        "app",
        "-e",
        "SELECT id FROM orders",
    ]


DESCRIPTOR = Descriptor(
    image=IMAGE,
    ports={"mysql": 3306, "metrics": EXPORTER_PORT},
    exporter=EXPORTER,
    read_orders=read_orders,
    host_read_orders="mysql -N -B -e 'SELECT id FROM app.orders'",
)
