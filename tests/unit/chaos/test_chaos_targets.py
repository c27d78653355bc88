"""Target resolution: instance, service (seeded pick), vip_holder:<svc>, TargetSpec."""

from __future__ import annotations

import random
from typing import Any

import pytest

from harness.chaos.base import FaultContext
from harness.chaos.targets import resolve
from harness.errors import InfrastructureError
from harness.plan.build import make_plan
from harness.plan.model import RunPlan
from harness.spec.models import TargetSpec, Topology
from tests.fakes import FakeContainer

TOPO = {
    "version": 1,
    "name": "t",
    "services": {
        "lb": {"kind": "haproxy", "replicas": 2, "keepalived": {"vip": "auto"}, "backends": "web"},
        "web": {"kind": "web", "replicas": 3},
        "redis": {"kind": "redis"},
        "mysql": {"kind": "mariadb"},
    },
}


def plan() -> RunPlan:
    return make_plan(Topology.model_validate(TOPO), "r1", "10.99.0.0/24", [])


def ctx(seed: int = 0, holder: str | None = "lb-1", p: RunPlan | None = None) -> FaultContext:
    p = p or plan()
    conts: dict[str, Any] = {}
    for c in p.containers:
        conts[c.instance] = FakeContainer(c.instance, c.ip, c.kind)
        if c.instance == holder:
            conts[c.instance].addrs.append(p.vips["lb"])
    return FaultContext(conts, "r1", p, random.Random(seed))


def test_an_instance_name_is_that_instance() -> None:
    assert resolve("web-2", ctx()) == ["web-2"]
    assert resolve("redis", ctx()) == ["redis"]  # one replica: the service's only instance


def test_a_service_name_picks_one_member_reproducibly() -> None:
    picks = {seed: [resolve("web", ctx(seed))[0] for _ in range(5)] for seed in range(20)}
    assert all(len(p) == 5 and set(p) <= {"web-1", "web-2", "web-3"} for p in picks.values())
    assert picks == {seed: [resolve("web", ctx(seed))[0] for _ in range(5)] for seed in range(20)}
    assert len({p[0] for p in picks.values()}) > 1  # the seed matters


def test_vip_holder_is_who_holds_the_vip_now() -> None:
    assert resolve("vip_holder:lb", ctx(holder="lb-2")) == ["lb-2"]
    c = ctx(holder="lb-1")
    c.containers["lb-1"].alive = False  # a paused holder cannot be asked: nobody holds it
    with pytest.raises(InfrastructureError, match="nobody holds the VIP of 'lb'"):
        resolve("vip_holder:lb", c)


def test_vip_holder_of_nobody_fails() -> None:
    with pytest.raises(InfrastructureError, match="nobody holds"):
        resolve("vip_holder:lb", ctx(holder=None))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"pick": "first"}, ["web-1"]),
        ({"pick": "first", "count": 2}, ["web-1", "web-2"]),
        ({"pick": "last", "count": 2}, ["web-2", "web-3"]),
        ({"pick": "all"}, ["web-1", "web-2", "web-3"]),
        ({"pick": "all", "count": 1}, ["web-1", "web-2", "web-3"]),
        ({"pick": "first", "count": 10}, ["web-1", "web-2", "web-3"]),  # capped at the service size
        ({"pick": "first", "percent": 50}, ["web-1", "web-2"]),  # 1.5 rounds up
        ({"pick": "last", "percent": 1}, ["web-3"]),  # at least one
        ({"pick": "first", "percent": 100}, ["web-1", "web-2", "web-3"]),
    ],
)
def test_target_spec(spec: dict[str, Any], expected: list[str]) -> None:
    assert resolve(TargetSpec(service="web", **spec), ctx()) == expected


def test_target_spec_random_is_seeded_distinct_and_in_plan_order() -> None:
    spec = TargetSpec(service="web", pick="random", count=2)
    runs = [[resolve(spec, ctx(seed)) for _ in range(3)] for seed in range(10)]
    for run in runs:
        for pick in run:
            assert len(set(pick)) == 2 and pick == sorted(pick)
    assert runs == [[resolve(spec, ctx(seed)) for _ in range(3)] for seed in range(10)]
    assert len({tuple(r[0]) for r in runs}) > 1


def test_percent_rounding_is_not_fooled_by_floats() -> None:
    topo = dict(TOPO, services={**TOPO["services"], "web": {"kind": "web", "replicas": 10}})
    p = make_plan(Topology.model_validate(topo), "r1", "10.99.0.0/24", [])
    spec = TargetSpec(service="web", pick="first", percent=30)
    assert len(resolve(spec, ctx(p=p))) == 3


def test_unknown_names_fail_with_the_known_ones() -> None:
    with pytest.raises(InfrastructureError, match="unknown container or service 'wbe'.*web-1"):
        resolve("wbe", ctx())
    with pytest.raises(InfrastructureError, match="unknown container or service 'nope'"):
        resolve(TargetSpec(service="nope"), ctx())


def test_a_service_target_never_picks_a_stopped_instance() -> None:
    c = ctx()
    c.containers["web-2"].status = "exited"  # killed by an earlier step
    assert {resolve("web", ctx_seed)[0] for ctx_seed in [c] * 10} <= {"web-1", "web-3"}
    assert resolve(TargetSpec(service="web", pick="all"), c) == ["web-1", "web-3"]
    assert resolve(TargetSpec(service="web", pick="last"), c) == ["web-3"]
    c.containers["web-1"].status = c.containers["web-3"].status = "dead"
    with pytest.raises(InfrastructureError, match="no live instance of 'web' to pick"):
        resolve("web", c)
