"""observe/writes.py: the acknowledged order ids (the plugin's event logs) against the ones the
database stored; on a replicated database, the primary is whoever holds its VIP after the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfrastructureError
from harness.observe import writes
from harness.plan.build import make_plan
from harness.plan.model import RunPlan
from harness.spec.models import Topology
from tests.fakes import FakeContainer

SERVICES: dict[str, Any] = {
    "lb": {"kind": "haproxy", "backends": "web"},
    "web": {"kind": "web", "replicas": 2},
    "redis": {"kind": "redis"},
}


def plan(db: dict[str, Any] | None) -> RunPlan:
    services: dict[str, Any] = (
        dict(SERVICES, db=db)
        if db
        else {
            "lb": {"kind": "haproxy", "backends": "app"},
            "app": {"kind": "custom", "image": "nginx"},  # no database at all
        }
    )
    topo = Topology.model_validate({"version": 1, "name": "t", "services": services})
    return make_plan(
        topo, "r1", "10.99.0.0/24", [], secrets={"db_password": "pw", "redis_password": "x"}
    )


class Database(FakeContainer):
    """Answers the descriptor's read_orders query (mysql -e 'SELECT id FROM orders')."""

    def __init__(self, instance: str, ip: str | None = None, ids: tuple[str, ...] = ()) -> None:
        super().__init__(instance, ip)
        self.ids, self.code = ids, 0

    def exec_run(self, cmd: list[str], detach: bool = False, stream: bool = False) -> Any:
        if cmd[0] != "mysql":
            return super().exec_run(cmd, detach, stream)
        self._call("exec", tuple(cmd), detach)
        if self.code:
            return self.code, b"ERROR 1045 (28000): Access denied for user 'app'"
        return 0, "".join(f"{i}\n" for i in self.ids).encode()


def event_log(path: Path, *lines: object) -> None:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))


def test_acked_ids_come_from_every_locust_process_and_skip_broken_lines(tmp_path: Path) -> None:
    event_log(
        tmp_path / "events.jsonl",
        {"event": "write_acked", "id": "a"},
        {"event": "request", "id": "not-a-write"},
        '{"event": "write_acked", "id": ',  # a line cut by a killed process
    )
    event_log(tmp_path / "events-5558.jsonl", {"event": "write_acked", "id": "b"})
    event_log(tmp_path / "events-5559.jsonl", {"event": "write_acked"})  # no id
    assert writes.acked_ids(tmp_path) == {"a", "b"}


def test_check_counts_the_acknowledged_writes_the_database_lost(tmp_path: Path) -> None:
    p = plan({"kind": "mariadb"})
    event_log(
        tmp_path / "events.jsonl", *({"event": "write_acked", "id": f"o{i}"} for i in range(5))
    )
    db = Database("db", ids=("o0", "o2", "o4", "other"))  # one replica: named as its service
    checked, missing, sample = writes.check(p, {"db": db}, tmp_path)
    assert (checked, missing, sample) == (5, 2, ["o1", "o3"])
    (call,) = db.named("exec")
    assert call[1][0] == "mysql" and "-ppw" in call[1]  # the run's own password


def test_a_replicated_database_is_read_on_the_instance_holding_its_vip(tmp_path: Path) -> None:
    p = plan({"kind": "mariadb", "replicas": 2, "keepalived": {"vip": "auto"}})
    vip = p.vips["db"]
    first, second = Database("db-1", ids=("old",)), Database("db-2", vip, ids=("x", "y"))
    assert writes.stored_ids(p, {"db-1": first, "db-2": second}) == {"x", "y"}
    assert not first.named("exec") or all(c[1][0] == "ip" for c in first.named("exec"))


def test_nobody_holding_the_database_vip_is_an_infrastructure_error() -> None:
    p = plan({"kind": "mariadb", "replicas": 2, "keepalived": {"vip": "auto"}})
    with pytest.raises(InfrastructureError, match="holds its VIP"):
        writes.stored_ids(p, {"db-1": Database("db-1"), "db-2": Database("db-2")})


def test_no_database_or_an_unreadable_one_is_an_infrastructure_error() -> None:
    with pytest.raises(InfrastructureError, match="no database service"):
        writes.stored_ids(plan(None), {})
    db = Database("db")
    db.code = 1
    with pytest.raises(InfrastructureError, match="cannot read orders from db: .*Access denied"):
        writes.stored_ids(plan({"kind": "mariadb"}), {"db": db})
