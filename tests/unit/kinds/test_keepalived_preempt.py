"""harness/kinds/keepalived.py: `preempt: false` must reach keepalived. Keepalived ignores
`nopreempt` on a node whose initial state is MASTER ("nopreempt will not work with initial
state MASTER - clearing", vrrp.c), so without preemption every node starts BACKUP, the first
with the highest priority; with it the first node is the VIP's owner (MASTER, priority 255)."""

from __future__ import annotations

import re

import pytest

from harness.plan.build import make_plan
from harness.spec.models import Topology


def confs(preempt: bool, replicas: int = 3) -> list[str]:
    keepalived = {"vip": "auto", "advert_int": "1s", "priority": 120, "preempt": preempt}
    topo = Topology.model_validate(
        {
            "version": 1,
            "name": "t",
            "services": {
                "lb": {
                    "kind": "haproxy",
                    "replicas": replicas,
                    "backends": "web",
                    "keepalived": keepalived,
                },
                "web": {"kind": "web"},
                "db": {"kind": "mariadb"},
            },
        }
    )
    plan = make_plan(topo, "r1", "10.99.0.0/24", [])
    return [
        plan.container(f"lb-{i}").files["/etc/keepalived/keepalived.conf"]
        for i in range(1, replicas + 1)
    ]


def setting(conf: str, key: str) -> str:
    found = re.findall(rf"^\s*{key}(?: (\S+))?\s*$", conf, re.M)
    assert len(found) <= 1, (key, found)
    return found[0] if found else "<absent>"


def test_without_preemption_every_node_starts_backup_the_first_highest() -> None:
    one, two, three = confs(preempt=False)
    assert [setting(c, "state") for c in (one, two, three)] == ["BACKUP"] * 3
    assert [setting(c, "nopreempt") for c in (one, two, three)] == [""] * 3
    assert [setting(c, "priority") for c in (one, two, three)] == ["120", "110", "100"]


@pytest.mark.parametrize("replicas", [2, 3])
def test_with_preemption_the_first_node_owns_the_vip(replicas: int) -> None:
    first, *others = confs(preempt=True, replicas=replicas)
    assert (setting(first, "state"), setting(first, "priority")) == ("MASTER", "255")
    assert [setting(c, "state") for c in others] == ["BACKUP"] * len(others)
    assert [setting(c, "priority") for c in others] == [
        str(120 - 10 * i) for i in range(1, replicas)
    ]
    assert all(setting(c, "nopreempt") == "<absent>" for c in [first, *others])
