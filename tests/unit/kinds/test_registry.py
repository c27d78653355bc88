"""Service kinds describe themselves (issue 10, ask 3): every kind of harness/roles.py has a
module that renders it and declares a DESCRIPTOR; the rest of the harness finds kinds by role."""

from __future__ import annotations

import json

import pytest

from harness import kinds, roles
from harness.chaos import process_kill, vip_failover
from harness.kinds.descriptor import LogLines
from harness.roles import Role
from harness.spec import graph, semantic
from harness.spec.models import Topology
from harness.verdict import bounds
from harness.watch.logs import LogWatcher
from tests.fakes import FakeExporter


@pytest.mark.parametrize("kind", sorted(roles.FACTS))
def test_every_kind_has_a_module_with_a_descriptor(kind: str) -> None:
    module = kinds.get(kind)
    assert callable(module.containers)
    assert isinstance(kinds.descriptor(kind), kinds.Descriptor)


@pytest.mark.parametrize("kind", roles.kinds_of(Role.LOAD_BALANCER))
def test_a_load_balancer_tells_what_its_log_means_and_what_bounds_it(kind: str) -> None:
    d = kinds.descriptor(kind)
    assert d.log is not None and d.log.started
    assert d.log.backend or d.log.disabled  # an active check's verdict or a passive ejection
    if d.log.vip:  # it may carry a VIP: Keepalived's tracking script follows its process
        assert d.tracks is not None and roles.process(d.tracks) is not None
    assert d.ejection is not None or d.ejection_in is not None


def test_the_spec_and_the_chaos_code_read_one_table() -> None:
    assert graph.LB_KINDS == semantic.LB_KINDS == roles.kinds_of(Role.LOAD_BALANCER)
    assert roles.kinds_of(Role.DATABASE) == semantic.DB_KINDS
    assert roles.restartable() == semantic.RESTARTABLE
    assert set(process_kill.RESTART) == set(roles.restartable())
    assert roles.only(Role.OBSERVER) == graph.PROMETHEUS
    assert roles.only(Role.PROXY) == graph.TOXIPROXY
    with_vip = [k for k in graph.LB_KINDS if kinds.descriptor(k).tracks]
    assert {"haproxy", "nginx"} <= {vip_failover.lb_process(k) for k in with_vip}


def test_only_a_database_reads_the_orders_back() -> None:
    readers = {k for k in roles.FACTS if kinds.descriptor(k).read_orders}
    assert readers == set(roles.kinds_of(Role.DATABASE))
    argv = kinds.descriptor("mariadb").read_orders({"db_password": "s3cret"})  # type: ignore[misc]
    assert argv[0] == "mysql" and "-ps3cret" in argv


def topo(lb: dict[str, object]) -> Topology:
    return Topology.model_validate(
        {
            "version": 1,
            "name": "t",
            "services": {
                "lb": {"backends": "web", **lb},
                "web": {"kind": "web"},
                "redis": {"kind": "redis"},
                "db": {"kind": "mariadb"},
            },
        }
    )


def test_the_ejection_bound_comes_from_the_lb_kind_in_front() -> None:
    check = {"interval": "500ms", "fall": 3, "timeout": "1s"}
    assert bounds.ejection(topo({"kind": "haproxy", "check": check}), "web") == (
        "haproxy",
        4.5,
        "fall 3 x (inter 0.5s + timeout 1s)",
    )
    kind, bound, how = bounds.ejection(topo({"kind": "nginx-lb", "max_fails": 2}), "web")
    assert kind == "nginx-lb" and bound is not None and how.startswith("passive: max_fails 2")
    assert bounds.ejection(topo({"kind": "haproxy"}), "db") == ("", None, "")


def test_a_watcher_reads_only_its_own_kinds_lines() -> None:
    haproxy = kinds.descriptor("haproxy").log
    assert haproxy is not None
    w = LogWatcher(None, "lb-1", FakeExporter(), 0, lines=haproxy)
    w.handle("2026-11-22T02:16:56.1Z [WARNING] Server app/web-1 is DOWN, reason: Layer4 timeout")
    w.handle(
        "2026-11-22T02:16:57.1Z [warn] 1#1: *5 upstream server temporarily disabled while "
        'connecting to upstream, upstream: "http://10.0.0.5:80/"'
    )
    w.handle("2026-11-22T02:16:58.1Z Keepalived_vrrp[7]: (VI_1) Entering MASTER STATE")
    assert [e[1:] for e in w.events] == [
        ("backend", "web-1", "DOWN"),
        ("keepalived", "lb-1", "MASTER"),
    ]


def test_every_kinds_lines_together_is_what_an_untold_watcher_reads() -> None:
    merged = kinds.log_lines()
    for d in kinds.by_role(Role.LOAD_BALANCER).values():
        assert d.log is not None
        assert set(d.log.backend + d.log.disabled + d.log.vip) <= set(
            merged.backend + merged.disabled + merged.vip
        )
    assert len(set(merged.vip)) == len(merged.vip)  # Keepalived's line once, not per LB kind
    assert LogLines() + LogLines() == LogLines()


def test_a_link_reaches_the_port_its_target_kind_declares() -> None:
    """Links to a mysql service (the user's image) were planned with a port table that only
    knew mariadb and redis: a KeyError reported as a harness bug."""
    from harness.plan.build import make_plan

    topo = Topology.model_validate(
        {
            "version": 1,
            "name": "t",
            "services": {
                "lb": {"kind": "haproxy", "backends": "web"},
                "web": {"kind": "web"},
                "redis": {"kind": "redis"},
                "db": {"kind": "mysql", "image": "mysql:8"},
            },
            "links": [{"from": "web", "to": "db"}, {"from": "web", "to": "redis"}],
        }
    )
    plan = make_plan(topo, "r1", "10.99.0.0/24", [])
    proxy = next(c for c in plan.containers if c.kind in roles.kinds_of(Role.PROXY))
    config = json.loads(proxy.files["/etc/toxiproxy.json"])
    db, redis = plan.container("db").ip, plan.container("redis").ip
    assert [(p["listen"], p["upstream"]) for p in config] == [
        ("0.0.0.0:10000", f"{db}:3306"),
        ("0.0.0.0:10001", f"{redis}:6379"),
    ]
    web = plan.container("web")
    assert (web.env["DB_HOST"], web.env["DB_PORT"]) == (proxy.ip, "10000")
