"""The watchers against one real stack: two Nginx LBs with passive checks behind a Keepalived
VIP (max_fails 1, fail_timeout 2s), one Nginx LB that never ejects (max_fails 0), two web nodes
and MariaDB. A killed backend is ejected by the LB's own account (its error log), the one that
never ejects says nothing, and a restarted LB is followed again by its log and VIP watchers.
Requests go only to the run's own container addresses."""

from __future__ import annotations

import functools
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from harness import chaos
from harness.chaos.base import FaultContext
from harness.plan.model import RunPlan
from harness.spec.models import Fault as FaultSpec
from harness.watch import Watchers
from tests.integration.helpers import running_stack

pytestmark = pytest.mark.docker

TOPOLOGY = """\
version: 1
name: watch
services:
  lb:
    kind: nginx-lb
    replicas: 2
    backends: web
    max_fails: 1
    fail_timeout: 2s
    timeout_connect: 500ms
    keepalived: {vip: auto, advert_int: 1s}
  never:
    kind: nginx-lb
    backends: web
    max_fails: 0
    timeout_connect: 500ms
  web: {kind: web, replicas: 2, sessions: files, db_timeout: 1s, depends_on: [mysql]}
  mysql: {kind: mariadb}
assertions:
  - error_budget: {max_error_ratio: 0.5}
"""


class Recorder:
    """The exporter's gauges, recorded: (gauge, labels, value)."""

    def __init__(self) -> None:
        self.sets: list[tuple[str, tuple[str, ...], float]] = []

    def __getattr__(self, name: str) -> Any:
        sets = self.sets

        class G:
            def labels(self, *labels: str) -> Any:
                return SimpleNamespace(set=lambda v: sets.append((name, labels, v)))

            def set(self, v: float) -> None:
                sets.append((name, (), v))

        return G()

    def values(self, name: str, *labels: str) -> list[float]:
        return [v for n, lab, v in list(self.sets) if n == name and lab == labels]


@dataclass
class Env:
    plan: RunPlan
    ctx: FaultContext
    watchers: Watchers
    exporter: Recorder

    def ip(self, instance: str) -> str:
        return self.plan.container(instance).ip

    def fault(self, spec: dict[str, Any]) -> Any:
        f = FaultSpec.model_validate(spec)
        return chaos.make(f.kind, f.params, self.ctx)

    def log(self, instance: str) -> str:
        return self.ctx.containers[instance].logs(timestamps=True).decode(errors="replace")


def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline, got = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(0.1)
    pytest.fail(f"not within {timeout:g}s (last: {got!r})")


def ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running_stack(tmp_path_factory, "watch", TOPOLOGY) as (plan, stack):
        exporter = Recorder()
        watchers = Watchers(plan, stack.containers, exporter, time.time() - 1, max_seconds=300)
        watchers.start()
        try:
            ctx = FaultContext(stack.containers, plan.run_id, plan, random.Random(7))
            yield Env(plan, ctx, watchers, exporter)
        finally:
            watchers.stop()


@pytest.fixture(autouse=True)
def steady(env: Env) -> None:
    for inst in ("web-1", "web-2", "lb-1", "lb-2", "never"):
        eventually(functools.partial(ok, f"http://{env.ip(inst)}/health"), 60)
    eventually(lambda: env.watchers.vip_holders().get("lb") == "lb-1", 30)


def traffic(urls: list[str], seconds: float) -> None:
    """Sequential GETs to each URL, one thread per URL, for `seconds`."""

    def loop(url: str) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                httpx.get(url, timeout=3.0)
            except httpx.HTTPError:
                pass

    threads = [threading.Thread(target=loop, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_nginx_ejection_is_exported_from_the_lbs_own_log_and_max_fails_0_never_ejects(
    env: Env,
) -> None:
    kill = env.fault({"kill": {"target": "web-2", "restore": True}})
    killed_at = time.time()
    kill.inject()
    try:
        traffic([f"http://{env.ip('lb-1')}/health", f"http://{env.ip('never')}/health"], 4.0)
        downs = eventually(lambda: env.exporter.values("backend_state", "lb-1", "web-2", "DOWN"))
        assert killed_at <= downs[0] <= killed_at + 4.0
        assert env.exporter.values("backend_up", "lb-1", "web-2")[0] == 0
        assert env.watchers.backend_states()["lb-1"]["web-2"] == "DOWN"
        # the LB that never ejects tried web-2 and failed, and said nothing about disabling it
        tail = env.log("never")
        assert "while connecting to upstream" in tail and "temporarily disabled" not in tail
        assert not [s for s in env.exporter.sets if s[0] == "backend_state" and s[1][0] == "never"]
        assert "never" not in env.watchers.backend_states()
    finally:
        kill.rollback()
    # Nginx tries it again fail_timeout (2 s, whole seconds) after the last ejection
    eventually(lambda: ok(f"http://{env.ip('web-2')}/health"), 30)
    eventually(lambda: env.watchers.backend_states()["lb-1"]["web-2"] == "UP", 15)
    up = env.exporter.values("backend_state", "lb-1", "web-2", "UP")[-1]
    last_down = env.exporter.values("backend_state", "lb-1", "web-2", "DOWN")[-1]
    assert up == math.floor(last_down) + 2 + 1
    assert env.exporter.values("backend_up", "lb-1", "web-2")[-1] == 1


def test_log_and_vip_watchers_follow_a_restarted_lb(env: Env) -> None:
    [logs] = [w for w in env.watchers.logs if w.instance == "lb-1"]
    [vip] = env.watchers.vips
    attaches, vip_attaches = logs.attaches, vip.attaches["lb-1"]
    restart = env.fault({"restart": "lb-1"})
    restarted_at = time.time()
    restart.inject()
    try:
        # Keepalived's transitions in the new container, read from the new log stream
        eventually(lambda: [e for e in logs.events if e[1] == "keepalived" and e[0] > restarted_at])
        eventually(lambda: [e for e in logs.events if e[1] == "process" and e[0] > restarted_at])
        # the VIP watcher runs a new exec in lb-1, which takes its VIP back (preempt)
        eventually(lambda: vip.sampled.get("lb-1", 0) > restarted_at + 0.5)
        eventually(lambda: env.watchers.vip_holders()["lb"] == "lb-1", 20)
    finally:
        restart.rollback()
    assert logs.attaches > attaches and vip.attaches["lb-1"] > vip_attaches
    lines = [(t, w, n, s) for t, w, n, s in logs.events if w == "keepalived"]
    assert len(lines) == len(set(lines))  # nothing handled twice across the re-attach
    assert ok(f"http://{env.plan.vips['lb']}/health")
