"""The watchers of a run (harness.watch.Watchers): a log watcher for each container whose kind
says what its log means (the LBs), reading only its own kind's lines; a VIP watcher per VIP; a
Docker event wakes the watchers of that container; what is down and the history, for the
journal. No thread is started: lines and events are handed in."""

from __future__ import annotations

import pytest

from harness import kinds
from harness.plan.build import make_plan
from harness.plan.model import RunPlan
from harness.spec.models import Topology
from harness.watch import Watchers
from tests.fakes import FakeExporter

T = "2026-11-22T02:16:5{}.000000000Z"


@pytest.fixture
def plan() -> RunPlan:
    topo = Topology.model_validate(
        {
            "version": 1,
            "name": "t",
            "services": {
                "lb": {
                    "kind": "haproxy",
                    "replicas": 2,
                    "keepalived": {"vip": "auto"},
                    "backends": "web",
                },
                "edge": {"kind": "nginx-lb", "backends": "web"},
                "web": {"kind": "web", "replicas": 2},
                "redis": {"kind": "redis"},
                "mysql": {"kind": "mariadb"},
            },
        }
    )
    return make_plan(topo, "r1", "10.99.0.0/24", [])


def test_each_lb_gets_a_log_watcher_with_its_own_kinds_lines(plan: RunPlan) -> None:
    w = Watchers(plan, {}, FakeExporter(), 0, 60)
    by_instance = {x.instance: x for x in w.logs}
    assert sorted(by_instance) == ["edge", "lb-1", "lb-2"]  # not web, redis, mysql, prometheus
    assert by_instance["lb-1"].lines == kinds.descriptor("haproxy").log
    assert by_instance["edge"].lines == kinds.descriptor("nginx-lb").log
    assert by_instance["edge"].upstreams and not by_instance["lb-1"].upstreams
    assert [v.service for v in w.vips] == ["lb"]
    assert w.vips[0].instances == ["lb-1", "lb-2"]


def test_lines_become_backend_states_and_history(plan: RunPlan) -> None:
    w = Watchers(plan, {}, FakeExporter(), 0, 60)
    lb1 = next(x for x in w.logs if x.instance == "lb-1")
    edge = next(x for x in w.logs if x.instance == "edge")
    web1 = plan.container("web-1").ip
    lb1.handle(f"{T.format(1)} [WARNING] Server app/web-1 is DOWN, reason: Layer4 timeout")
    lb1.handle(f"{T.format(2)} Keepalived_vrrp[9]: (VI_1) Entering BACKUP STATE")
    lb1.handle(  # an Nginx line in an HAProxy log means nothing
        f"{T.format(3)} [warn] 1#1: *1 upstream server temporarily disabled while connecting "
        f'to upstream, upstream: "http://{web1}:80/"'
    )
    edge.handle(
        f"{T.format(4)} [warn] 1#1: *1 upstream server temporarily disabled while connecting "
        f'to upstream, upstream: "http://{web1}:80/"'
    )
    assert w.backend_states() == {"lb-1": {"web-1": "DOWN"}, "edge": {"web-1": "DOWN"}}
    events = w.history()["lb_events"]
    assert [e[1:] for e in events] == [
        ["lb-1", "backend", "web-1", "DOWN"],
        ["lb-1", "keepalived", "lb-1", "BACKUP"],
        ["edge", "backend", "web-1", "DOWN"],
    ]


def test_a_docker_event_wakes_that_containers_watchers_and_counts_as_down(plan: RunPlan) -> None:
    w = Watchers(plan, {}, FakeExporter(), 0, 60)
    lb2 = next(x for x in w.logs if x.instance == "lb-2")
    assert not lb2.follow.wake.is_set()
    w.events.events += [(1.0, "lb-2", "kill"), (2.0, "web-1", "pause"), (3.0, "web-1", "unpause")]
    for ts, instance, action in w.events.events:
        w._on_event(ts, instance, action)
    assert not lb2.follow.wake.is_set()  # killed: nothing to read until it runs again
    w._on_event(4.0, "lb-2", "start")
    assert lb2.follow.wake.is_set()
    assert w.not_running() == ["lb-2"]
    assert w.history()["container_events"][0] == [1.0, "lb-2", "kill"]
