"""Every fault against one real stack (2 HAProxy + Keepalived, 2 web, Redis, MariaDB, a Toxiproxy
link web->mysql), its effect checked from the outside: HTTP status and timing, container state,
who holds the VIP. One topology for the whole module; it is always torn down, and the last
check is that nothing carrying the run's label is left."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import chaos
from harness.chaos import partition
from harness.chaos.base import FaultContext
from harness.chaos.recover import recover
from harness.journal import Journal
from harness.plan.model import RunPlan
from harness.runtime import labels
from harness.runtime.docker import client
from harness.runtime.probe import vip_holder
from harness.spec.models import Fault as FaultSpec
from harness.toxiproxy.client import ToxiproxyClient
from tests.integration.helpers import eventually, running_stack

pytestmark = pytest.mark.docker

TOPOLOGY = """\
version: 1
name: chaos-faults
services:
  lb:
    kind: haproxy
    replicas: 2
    keepalived: {vip: auto, advert_int: 1s}
    backends: web
    check: {path: /health, interval: 500ms, timeout: 1s, fall: 2, rise: 2}
  web: {kind: web, replicas: 2, sessions: redis, db_timeout: 1s}
  redis: {kind: redis}
  mysql: {kind: mariadb}
links:
  - {from: web, to: mysql}
"""


@dataclass
class Env:
    plan: RunPlan
    ctx: FaultContext

    def url(self, instance: str, path: str = "/health") -> str:
        return f"http://{self.plan.container(instance).ip}{path}"

    def fault(self, spec: dict[str, Any]) -> Any:
        f = FaultSpec.model_validate(spec)
        return chaos.make(f.kind, f.params, self.ctx)

    def holder(self) -> str | None:
        return vip_holder(self.ctx.containers, self.plan, "lb")


def get(url: str, timeout: float = 2.0) -> int | str:
    """The status code, or the name of the error (ReadTimeout, ConnectError, ...)."""
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError as exc:
        return exc.__class__.__name__


def status(env: Env, instance: str) -> str:
    c = env.ctx.containers[instance]
    c.reload()
    return str(c.status)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running_stack(tmp_path_factory, "chaos", TOPOLOGY) as (plan, stack):
        yield Env(plan, FaultContext(stack.containers, plan.run_id, plan, random.Random(7)))


@pytest.fixture(autouse=True)
def steady(env: Env) -> None:
    """Each test starts from a healthy stack: both web nodes answer, lb-1 holds the VIP and
    the VIP serves (faults of an earlier test have healed)."""
    for url in (env.url("web-1"), env.url("web-2"), f"{env.plan.load_url}/health"):
        eventually(lambda u=url: get(u), 200, 30)
    eventually(env.holder, "lb-1", 30)


def order_time(env: Env, instance: str, tries: int = 3) -> float:
    """The fastest of `tries` POST /orders: a loaded CI host adds noise, never less latency."""
    best = float("inf")
    for _ in range(tries):
        t = time.monotonic()
        r = httpx.post(env.url(instance, "/orders"), json={"id": uuid.uuid4().hex}, timeout=10)
        assert r.status_code == 200, r.text
        best = min(best, time.monotonic() - t)
    return best


def chain(env: Env, instance: str) -> str:
    return partition.in_netns(env.ctx.containers[instance], "iptables -w -S")


# ------------------------------------------------------------------ container faults


def test_pause_freezes_the_node_without_killing_it(env: Env) -> None:
    fault = env.fault({"pause": "web-2"})
    fault.inject()
    try:
        assert status(env, "web-2") == "paused"
        assert get(env.url("web-2"), timeout=1.0) in ("ReadTimeout", "ConnectTimeout")
        assert get(env.url("web-1")) == 200
    finally:
        fault.rollback()
    fault.rollback()
    assert status(env, "web-2") == "running"
    eventually(lambda: get(env.url("web-2")), 200, 5)


def test_stop_then_start(env: Env) -> None:
    fault = env.fault({"stop": "web-2"})
    fault.inject()
    try:
        assert status(env, "web-2") == "exited"
        assert get(env.url("web-2"), timeout=1.0) in ("ConnectError", "ConnectTimeout")
    finally:
        fault.rollback()
    assert status(env, "web-2") == "running"
    eventually(lambda: get(env.url("web-2")), 200, 15)


def test_kill_with_restore(env: Env) -> None:
    fault = env.fault({"kill": {"target": "web-2", "restore": True}})
    fault.inject()
    assert status(env, "web-2") == "exited"
    fault.rollback()
    eventually(lambda: get(env.url("web-2")), 200, 15)


def test_process_kill_php_fpm_gives_502_then_heals(env: Env) -> None:
    fault = env.fault({"process_kill": {"target": "web-1", "process": "php-fpm8.2"}})
    fault.inject()
    try:
        assert get(env.url("web-1")) == 502  # nginx is alive, its FastCGI upstream is not
        assert get(env.url("web-2")) == 200
        assert status(env, "web-1") == "running"
    finally:
        fault.rollback()
    eventually(lambda: get(env.url("web-1")), 200, 5)


# ------------------------------------------------------------------ VIP failover


@pytest.mark.parametrize("method", ["kill", "stop_keepalived", "kill_lb_process"])
def test_vip_failover_moves_the_vip_and_rollback_restores_the_lb(env: Env, method: str) -> None:
    fault = env.fault({"vip_failover": {"service": "lb", "method": method}})
    assert fault.detail["holder_before"] == "lb-1"
    fault.inject()
    try:
        eventually(env.holder, "lb-2", 10)
        eventually(lambda: get(f"{env.plan.load_url}/health"), 200, 5)  # the VIP serves from lb-2
    finally:
        fault.rollback()
    eventually(
        lambda: get(f"http://{env.plan.container('lb-1').ip}/health"), 200, 10
    )  # lb-1 serves
    eventually(env.holder, "lb-1", 15)  # preempt: the VIP comes home


# ------------------------------------------------------------------ link faults


def test_latency_toxic_slows_orders_through_that_node(env: Env) -> None:
    assert order_time(env, "web-1") < 0.3
    fault = env.fault({"latency": {"link": "web->mysql", "latency": 0.3}})
    fault.inject()
    try:
        assert order_time(env, "web-1") >= 0.3
    finally:
        fault.rollback()
    assert order_time(env, "web-1") < 0.3
    api, proxy = env.plan.toxiproxy["web->mysql"]
    with ToxiproxyClient(api) as tp:
        assert tp.toxics(proxy) == []


def test_down_link_fails_health_until_rollback(env: Env) -> None:
    fault = env.fault({"down": "web->mysql"})
    fault.inject()
    try:
        assert get(env.url("web-1"), timeout=5) == 503
    finally:
        fault.rollback()
    eventually(lambda: get(env.url("web-1")), 200, 5)


# ------------------------------------------------------------------ partition


def test_partition_from_mysql_cuts_only_that_node(env: Env) -> None:
    fault = env.fault({"partition": {"target": "web-1", "peers": ["mysql"]}})
    fault.inject()
    try:
        assert "harness:" + env.ctx.run_id in chain(env, "web-1")
        assert get(env.url("web-1"), timeout=5) == 503  # the DB (reached through the link) is cut
        assert get(env.url("web-2")) == 200
    finally:
        fault.rollback()
    fault.rollback()
    assert "HARNESS-PART" not in chain(env, "web-1")
    eventually(lambda: get(env.url("web-1")), 200, 5)


def test_partition_from_all_keeps_only_the_observers(env: Env) -> None:
    fault = env.fault({"partition": {"target": "web-1"}})
    fault.inject()
    try:
        assert (
            get(env.url("web-1"), timeout=5) == 503
        )  # the gateway still reaches it, its DB does not

        def served_by() -> set[str]:  # the LBs' health checks are cut too: web-1 is ejected
            return {
                httpx.get(f"{env.plan.load_url}/health", timeout=5).headers["X-Served-By"]
                for _ in range(6)
            }

        eventually(served_by, {"web-2"}, 10)
    finally:
        fault.rollback()
    eventually(lambda: get(env.url("web-1")), 200, 5)


def test_partition_through_a_helper_container(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The path taken without root or nsenter: a NET_ADMIN helper joins the namespace."""
    monkeypatch.setattr(partition, "_host_can_enter", lambda pid, cid: False)
    fault = env.fault({"partition": {"target": "web-2", "peers": ["mysql"]}})
    fault.inject()
    try:
        assert "HARNESS-PART" in chain(env, "web-2")
        assert get(env.url("web-2"), timeout=5) == 503
    finally:
        fault.rollback()
    assert "HARNESS-PART" not in chain(env, "web-2")
    eventually(lambda: get(env.url("web-2")), 200, 5)
    run = client().containers.list(all=True, filters=labels.run_filter(env.ctx.run_id))
    assert len(run) == len(env.plan.containers)  # the helpers removed themselves


# ------------------------------------------------------------------ crash record


def test_recover_after_a_sigkilled_harness(env: Env, tmp_path: Path) -> None:
    journal = Journal(tmp_path, env.ctx.run_id, env.plan.topology, "chaos-faults.yaml")
    faults = [
        env.fault({"pause": "web-2"}),
        env.fault({"latency": {"link": "web->mysql", "latency": 0.2}}),
        env.fault({"partition": {"target": "web-1", "peers": ["redis"]}}),
    ]
    for i, f in enumerate(faults):
        journal.fault(
            {
                "name": f"f{i}",
                "kind": f.kind,
                "target": f.target,
                "status": "injected",
                "detail": f.detail,
            }
        )
        f.inject()
    journal.save()  # ...and the harness dies here: no rollback

    lines = recover(tmp_path)
    assert len(lines) == 3, lines
    assert status(env, "web-2") == "running"
    api, proxy = env.plan.toxiproxy["web->mysql"]
    with ToxiproxyClient(api) as tp:
        assert tp.toxics(proxy) == []
    assert "HARNESS-PART" not in chain(env, "web-1")
    saved = json.loads((tmp_path / "journal.json").read_text())
    assert {f["status"] for f in saved["faults"]} == {"recovered"}
