"""Issue 12, the data tier without Docker: replicated MariaDB options, their validation (one
line, with its fix), and the plan they become (replication env, the database VIP the app and
the Toxiproxy use, the replication channel through Toxiproxy, Keepalived on the instances)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import SpecError
from harness.plan.build import make_plan
from harness.spec.loader import load_topology
from harness.spec.models import MariaDBService

REPO = Path(__file__).resolve().parents[2]
SUBNET = "10.213.9.0/24"

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


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_topology(path)
    return [p[len(str(path)) + 1 :] for p in info.value.problems]


def plan(tmp_path: Path, text: str = TOPO) -> Any:
    return make_plan(load_topology(write(tmp_path, text)), "r1", SUBNET, [], base_dir=tmp_path)


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
    p = plan(tmp_path)
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

    p = plan(tmp_path)
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
    p = plan(tmp_path)
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
