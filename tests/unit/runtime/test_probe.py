"""The runtime probe (who holds a VIP now) and the baseline's steadiness check, against the
shared fakes: containers that answer `ip addr`, and a Prometheus with canned answers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from harness.errors import Inconclusive
from harness.plan.build import make_plan
from harness.plan.model import RunPlan
from harness.runtime.probe import vip_holder
from harness.spec.models import Topology
from harness.watch import state
from tests.fakes import FakeContainer, FakeProm

TOPO = {
    "version": 1,
    "name": "t",
    "services": {
        "lb": {"kind": "haproxy", "replicas": 2, "keepalived": {"vip": "auto"}, "backends": "web"},
        "web": {"kind": "web", "replicas": 2},
        "redis": {"kind": "redis"},
        "mysql": {"kind": "mariadb"},
    },
}


def stack(holder: str | None) -> tuple[RunPlan, dict[str, Any]]:
    plan = make_plan(Topology.model_validate(TOPO), "r1", "10.99.0.0/24", [])
    conts: dict[str, Any] = {c.instance: FakeContainer(c.instance, c.ip, c.kind) for c in plan.containers}
    if holder is not None:
        conts[holder].addrs.append(plan.vips["lb"])
    return plan, conts


def test_the_vip_holder_is_the_lb_with_the_address() -> None:
    plan, conts = stack("lb-2")
    assert vip_holder(conts, plan, "lb") == "lb-2"
    assert vip_holder(conts, plan, "web") is None  # no VIP at all
    conts["lb-2"].alive = False  # paused: it answers nobody, so it holds nothing
    assert vip_holder(conts, plan, "lb") is None
    del conts["lb-2"]
    assert vip_holder(conts, plan, "lb") is None


@pytest.fixture
def probes_ok(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    urls: list[str] = []

    def get(url: str, timeout: float) -> Any:
        urls.append(url)
        return SimpleNamespace(status_code=200)

    monkeypatch.setattr(state.httpx, "get", get)
    return urls


def test_steady_when_backends_are_up_the_vip_is_home_and_probes_answer(probes_ok: list[str]) -> None:
    plan, conts = stack("lb-1")
    prom = FakeProm({"sum(haproxy_server_status": 2.0, "count(haproxy_server_status": 2.0})
    got = state.wait_steady(plan, prom, conts, timeout=5)
    assert got["steady"] is True
    assert len(probes_ok) == 5 and probes_ok[0] == f"{plan.load_url}/health"
    assert {q.split("instance=")[1].split('"')[1] for q in prom.queries} == {"lb-1", "lb-2"}


def test_not_steady_names_every_problem(probes_ok: list[str]) -> None:
    plan, conts = stack("lb-2")
    prom = FakeProm({"sum(haproxy_server_status": 1.0, "count(haproxy_server_status": 2.0})
    with pytest.raises(Inconclusive) as err:
        state.wait_steady(plan, prom, conts, timeout=0.2)
    msg = str(err.value)
    assert "lb-1: 1/2 backends UP" in msg and "VIP of lb on lb-2, expected lb-1" in msg


def test_a_pair_that_does_not_preempt_is_steady_on_whichever_node_won(probes_ok: list[str]) -> None:
    """Without preemption every node starts BACKUP: the first election's winner keeps the VIP,
    so the baseline accepts any of the pair's nodes (and still refuses nobody)."""
    topo = {**TOPO, "services": {**TOPO["services"]}}
    topo["services"]["lb"] = {**topo["services"]["lb"], "keepalived": {"vip": "auto", "preempt": False}}
    plan = make_plan(Topology.model_validate(topo), "r1", "10.99.0.0/24", [])
    assert plan.vip_owner == {"lb": None}
    conts: dict[str, Any] = {c.instance: FakeContainer(c.instance, c.ip, c.kind) for c in plan.containers}
    prom = FakeProm({"sum(haproxy_server_status": 2.0, "count(haproxy_server_status": 2.0})
    with pytest.raises(Inconclusive) as err:
        state.wait_steady(plan, prom, conts, timeout=0.2)
    assert "VIP of lb on nobody, expected any of lb-1, lb-2" in str(err.value)
    conts["lb-2"].addrs.append(plan.vips["lb"])
    assert state.wait_steady(plan, prom, conts, timeout=5)["steady"] is True


def test_a_preempting_pair_expects_its_first_node() -> None:
    plan, _ = stack(None)
    assert plan.vip_owner == {"lb": "lb-1"}
