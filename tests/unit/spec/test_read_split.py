"""The read/write split (issue 12): `db_reads` on a web service becomes the app's
DB_READ_HOSTS (the database's replicas) and `stale_reads` needs a declared read path; bad
combinations are one line naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plan.build import make_plan
from harness.spec.loader import load_topology
from tests.unit.spec.topofile import REPO, SUBNET, plan, problems

TOPO = """\
version: 1
name: split
services:
  lb: {kind: haproxy, backends: web}
  web: {kind: web, replicas: 2, db_reads: replicas}
  redis: {kind: redis}
  mysql: {kind: mariadb, replicas: 3}
load: {users: 5, spawn_rate: 5, duration: 20s}
assertions:
  - stale_reads: {max_ratio: 0}
"""


def test_reads_from_replicas_list_every_replica_and_writes_stay_on_the_primary(
    tmp_path: Path,
) -> None:
    p = plan(tmp_path, TOPO)
    env = p.container("web-1").env
    assert env["DB_HOST"] == p.container("mysql-1").ip
    assert env["DB_READ_HOSTS"] == ",".join(
        f"{p.container(i).ip}:3306" for i in ("mysql-2", "mysql-3")
    )


def test_reads_from_the_primary_set_no_read_hosts(tmp_path: Path) -> None:
    p = plan(tmp_path, TOPO.replace("db_reads: replicas", "db_reads: primary"))
    assert p.container("web-2").env["DB_READ_HOSTS"] == ""


def test_stale_reads_without_a_read_split_app_is_one_line_with_its_fix(tmp_path: Path) -> None:
    found = problems(tmp_path, TOPO.replace(", db_reads: replicas", ""))
    assert found == [
        "10: assertions[0].stale_reads: stale_reads measures a read/write-split app, and no web "
        "service declares its read path (add db_reads: replicas to 'web', or db_reads: primary "
        "for the control)"
    ]


def test_reads_from_replicas_need_a_replica(tmp_path: Path) -> None:
    found = problems(tmp_path, TOPO.replace("{kind: mariadb, replicas: 3}", "{kind: mariadb}"))
    assert found == [
        "5: services.web.db_reads: db_reads: replicas reads from the database's replicas, and it "
        "has none (give the mariadb service replicas: 2, or set db_reads: primary)"
    ]


def test_db_reads_takes_primary_or_replicas_only(tmp_path: Path) -> None:
    [line] = problems(tmp_path, TOPO.replace("db_reads: replicas", "db_reads: nearest"))
    assert line.startswith("5: services.web.db_reads") and "replicas" in line


@pytest.mark.parametrize(
    ("name", "reads"),
    [("examples/stale-reads-split.yaml", "replicas"), ("db-reads-primary.yaml", "primary")],
)
def test_the_shipped_stale_reads_pair_plans(name: str, reads: str) -> None:
    topo = load_topology(REPO / "topologies" / name)
    p = make_plan(topo, "r1", SUBNET, [])
    hosts = p.container("web-1").env["DB_READ_HOSTS"]
    assert hosts == (f"{p.container('mysql-2').ip}:3306" if reads == "replicas" else "")
    assert p.container("mysql-2").env["DB_PRIMARY_HOST"] == p.container("toxiproxy").ip
    assert [a.kind for a in topo.assertions][0] == "stale_reads"


def test_stale_reads_and_db_reads_are_in_the_schema() -> None:
    from harness.spec.schema import json_schema

    text = str(json_schema())
    assert "stale_reads" in text and "db_reads" in text and "max_ratio" in text
