"""Issue 12, the data tier without Docker: replicated MariaDB options, their validation (one
line, with its fix), and the plan they become (replication env, the database VIP the app and
the Toxiproxy use, the replication channel through Toxiproxy, Keepalived on the instances)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plan.build import make_plan
from harness.spec.loader import load_topology
from harness.spec.models import MariaDBService
from tests.unit.spec.topofile import REPO, SUBNET, plan, problems, write

TOPO = """\
version: 1
name: db
services:
  lb: {kind: haproxy, backends: web}
  web: {kind: web, replicas: 2, sessions: redis}
  redis: {kind: redis}
  mysql:
    kind: mariadb
    replicas: 2
    replication: {mode: semi_sync, wait_point: after_sync, timeout: 10s}
    keepalived: {vip: auto}
links:
  - {from: mysql, to: mysql}
  - {from: web, to: mysql}
load: {users: 5, spawn_rate: 5, duration: 20s}
assertions:
  - no_lost_writes: {}
"""


def test_replication_defaults_and_values() -> None:
    svc = MariaDBService.model_validate(
        {"kind": "mariadb", "replicas": 2, "replication": {"mode": "semi_sync", "timeout": "2s"}}
    )
    assert svc.replication is not None
    assert (svc.replication.mode, svc.replication.wait_point, svc.replication.timeout) == (
        "semi_sync",
        "after_sync",
        2.0,
    )


def test_semi_sync_with_one_instance_is_refused_with_its_fix(tmp_path: Path) -> None:
    text = (
        TOPO.replace("    replicas: 2\n    replication", "    replication")
        .replace("    keepalived: {vip: auto}\n", "")
        .replace("  - {from: mysql, to: mysql}\n", "")
    )
    found = problems(tmp_path, text)
    assert found == [
        "9: services.mysql.replication.mode: semi_sync makes the primary wait for a replica's "
        "acknowledgement, and 'mysql' has no replica (set replicas: 2, or mode: async)"
    ]


def test_a_database_vip_needs_a_replica(tmp_path: Path) -> None:
    text = TOPO.replace("    replicas: 2\n", "").replace("mode: semi_sync", "mode: async")
    text = text.replace("  - {from: mysql, to: mysql}\n", "")
    found = problems(tmp_path, text)
    assert (
        len(found) == 1
        and "services.mysql.keepalived: a database VIP moves to a replica" in found[0]
    )
    assert found[0].endswith("(set replicas: 2)")


def test_mysql_images_are_not_replicated_by_the_harness(tmp_path: Path) -> None:
    text = "\n".join(
        line for line in TOPO.splitlines() if "keepalived" not in line and "from: mysql" not in line
    ).replace("kind: mariadb", "kind: mysql\n    image: mysql:8")
    found = problems(tmp_path, text + "\n")
    assert any(
        "replication is set up by the built-in MariaDB image (use kind: mariadb" in p for p in found
    )


def test_a_self_link_is_only_a_replicated_mariadbs_replication_channel(tmp_path: Path) -> None:
    text = (
        TOPO.replace("    replicas: 2\n", "")
        .replace("    replication: {mode: semi_sync, wait_point: after_sync, timeout: 10s}\n", "")
        .replace("    keepalived: {vip: auto}\n", "")
    )
    found = problems(tmp_path, text)
    assert (
        len(found) == 1
        and "links[0].to: a link from 'mysql' to itself carries no traffic" in found[0]
    )


def test_plan_replicates_from_the_first_instance_through_the_replication_link(
    tmp_path: Path,
) -> None:
    p = plan(tmp_path, TOPO)
    proxy = p.container("toxiproxy")
    m1, m2 = p.container("mysql-1"), p.container("mysql-2")
    assert m1.env["DB_SERVER_ID"] == "1" and m2.env["DB_SERVER_ID"] == "2"
    assert "DB_PRIMARY_HOST" not in m1.env
    assert m2.env["DB_PRIMARY_HOST"] == proxy.ip  # the replica reaches the primary via Toxiproxy
    assert m2.env["DB_REPL_MODE"] == "semi_sync"
    assert m2.env["DB_SEMI_SYNC_WAIT_POINT"] == "AFTER_SYNC"
    assert m2.env["DB_SEMI_SYNC_TIMEOUT_MS"] == "10000"
    assert p.toxiproxy["mysql->mysql"][1] == "mysql_to_mysql"


def test_toxiproxy_upstreams_are_the_primary_for_replication_and_the_vip_for_the_app(
    tmp_path: Path,
) -> None:
    import json

    p = plan(tmp_path, TOPO)
    proxies = {
        x["name"]: x["upstream"]
        for x in json.loads(p.container("toxiproxy").files["/etc/toxiproxy.json"])
    }
    assert proxies["mysql_to_mysql"] == f"{p.container('mysql-1').ip}:3306"
    assert proxies["web_to_mysql"] == f"{p.vips['mysql']}:3306"


def test_the_app_connects_to_the_database_vip(tmp_path: Path) -> None:
    text = TOPO.replace("  - {from: web, to: mysql}\n", "")
    p = plan(tmp_path, text)
    assert p.container("web-1").env["DB_HOST"] == p.vips["mysql"]
    assert p.container("web-1").env["DB_PORT"] == "3306"


def test_keepalived_on_the_database_tracks_mysqld_and_the_first_instance_is_master(
    tmp_path: Path,
) -> None:
    p = plan(tmp_path, TOPO)
    conf1 = p.container("mysql-1").files["/etc/keepalived/keepalived.conf"]
    conf2 = p.container("mysql-2").files["/etc/keepalived/keepalived.conf"]
    assert "pgrep -x mysqld" in conf1 and "state MASTER" in conf1 and "state BACKUP" in conf2
    assert f"{p.vips['mysql']}/24" in conf1
    assert "NET_ADMIN" in p.container("mysql-2").cap_add


def test_a_single_database_is_unchanged(tmp_path: Path) -> None:
    p = make_plan(load_topology(REPO / "topologies/ha.yaml"), "r1", SUBNET, [])
    db = p.container("mysql")
    assert not {k for k in db.env if k.startswith(("DB_SERVER", "DB_PRIMARY", "DB_REPL"))}
    assert "mysql" not in p.vips


@pytest.mark.parametrize("name", ["db-failover-semisync.yaml", "examples/db-failover-async.yaml"])
def test_the_shipped_failover_pair_plans(name: str) -> None:
    topo = load_topology(REPO / "topologies" / name)
    p = make_plan(topo, "r1", SUBNET, [])
    assert p.container("mysql-2").env["DB_PRIMARY_HOST"] == p.container("toxiproxy").ip
    mode = "semi_sync" if "semisync" in name else "async"
    assert p.container("mysql-2").env["DB_REPL_MODE"] == mode


# ---------------------------------------------------------------- replication_lag


def test_replication_lag_compiles_to_the_heartbeat_of_each_instance(tmp_path: Path) -> None:
    from harness.spec.models import Assertion
    from harness.verdict.assertions import compile_query
    from harness.verdict.windows import Timeline

    topo = load_topology(write(tmp_path, TOPO))
    a = Assertion.model_validate({"replication_lag": {"max": "1s"}})
    q = compile_query(a, "r1", Timeline(1000.0, 1020.0), topo)
    assert q.bound == 1.0 and q.op == "<=" and q.unit == "s"
    assert "mysql_heartbeat_now_timestamp_seconds" in q.expr
    assert "mysql_heartbeat_stored_timestamp_seconds" in q.expr
    assert 'instance=~"mysql-1|mysql-2"' in q.expr and "[20000ms:1000ms] @ 1020.000" in q.expr
    assert set(q.also) == {"p50", "p99"} and "quantile_over_time(0.99" in q.also["p99"]
    assert q.guards and q.reads == []  # a killed primary is not scraped to the end, by design


def test_replication_lag_needs_a_replicated_database(tmp_path: Path) -> None:
    text = BASE_SINGLE + "  - replication_lag: {max: 1s}\n"
    found = problems(tmp_path, text)
    assert len(found) == 1 and "replication_lag needs a replicated database" in found[0]
    assert found[0].endswith("(give a mariadb service replicas: 2)")


def test_replication_lag_names_an_unknown_service(tmp_path: Path) -> None:
    text = TOPO + "  - replication_lag: {max: 1s, service: mysq}\n"
    found = problems(tmp_path, text)
    assert (
        len(found) == 1 and "'mysq' is not a replicated mariadb (did you mean 'mysql'?)" in found[0]
    )


BASE_SINGLE = """\
version: 1
name: single
services:
  lb: {kind: haproxy, backends: web}
  web: {kind: web, sessions: files}
  mysql: {kind: mariadb}
load: {users: 5, spawn_rate: 5, duration: 20s}
assertions:
"""


# ---------------------------------------------------------------- Redis with Sentinel

REDIS = """\
version: 1
name: sentinel
services:
  lb: {kind: haproxy, backends: web}
  web: {kind: web, replicas: 2, sessions: redis}
  mysql: {kind: mariadb}
  redis:
    kind: redis
    replicas: 3
    sentinel: {quorum: 2}
    keepalived: {vip: auto}
load: {users: 5, spawn_rate: 5, duration: 20s}
assertions:
  - session_continuity: {}
"""


def test_sentinel_plan_replicates_from_the_first_and_the_vip_follows_the_master(
    tmp_path: Path,
) -> None:
    p = plan(tmp_path, REDIS)
    r1, r2, r3 = (p.container(f"redis-{i}") for i in (1, 2, 3))
    assert "REDIS_MASTER_HOST" not in r1.env
    assert r2.env["REDIS_MASTER_HOST"] == r3.env["REDIS_MASTER_HOST"] == r1.ip
    assert {r.env["REDIS_SENTINEL_MASTER"] for r in (r1, r2, r3)} == {r1.ip}
    assert r1.env["REDIS_SENTINEL_QUORUM"] == "2" and r2.env["REDIS_ANNOUNCE_IP"] == r2.ip
    conf = r2.files["/etc/keepalived/keepalived.conf"]
    assert 'script "/usr/local/bin/redis-is-master.sh"' in conf and "pgrep" not in conf
    assert p.container("web-1").env["REDIS_HOST"] == p.vips["redis"]
    ini = p.container("web-1").files["/etc/php/8.2/fpm/conf.d/99-harness.ini"]
    assert f"tcp://{p.vips['redis']}:6379" in ini


@pytest.mark.parametrize(
    ("old", "new", "field", "phrase"),
    [
        ("    replicas: 3\n", "    replicas: 2\n", "services.redis.sentinel", "(set replicas: 3)"),
        (
            "sentinel: {quorum: 2}",
            "sentinel: {quorum: 4}",
            "services.redis.sentinel.quorum",
            "(set quorum: 2)",
        ),
        (
            "    keepalived: {vip: auto}\n",
            "",
            "services.redis.sentinel",
            "(add keepalived: {vip: auto})",
        ),
        (
            "    sentinel: {quorum: 2}\n",
            "",
            "services.redis.keepalived",
            "(add sentinel: {quorum: 2})",
        ),
    ],
)
def test_bad_sentinel_combinations_are_one_line_with_their_fix(
    tmp_path: Path, old: str, new: str, field: str, phrase: str
) -> None:
    found = problems(tmp_path, REDIS.replace(old, new))
    assert len(found) == 1, found
    assert found[0].split(": ", 2)[1] == field and found[0].endswith(phrase), found[0]


@pytest.mark.parametrize(
    "name",
    ["redis-sentinel.yaml", "examples/redis-master-restarts-empty.yaml", "db-replicated.yaml"],
)
def test_the_shipped_data_topologies_plan(name: str) -> None:
    topo = load_topology(REPO / "topologies" / name)
    make_plan(topo, "r1", SUBNET, [])
