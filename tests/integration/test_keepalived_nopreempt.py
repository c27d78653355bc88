"""`keepalived: {preempt: false}` on a real pair of HAProxy + Keepalived nodes: once the VIP
moved away from lb-1 (the highest priority), it stays on lb-2 when lb-1's Keepalived runs
again. Before the fix lb-1 was rendered `state MASTER`, on which keepalived clears `nopreempt`,
so the VIP came back within about a second."""

from __future__ import annotations

import random
import time

import pytest

from harness import chaos
from harness.chaos import process_kill as pk
from harness.chaos.base import FaultContext
from harness.runtime.probe import vip_holder
from harness.spec.models import Fault as FaultSpec
from tests.integration.helpers import eventually, running_stack

pytestmark = pytest.mark.docker

TOPOLOGY = """\
version: 1
name: nopreempt
services:
  lb:
    kind: haproxy
    replicas: 2
    keepalived: {vip: auto, advert_int: 1s, preempt: false}
    backends: web
  web: {kind: web, sessions: files}
  mysql: {kind: mariadb}
"""


def test_the_vip_stays_put_when_its_old_holder_returns(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with running_stack(tmp_path_factory, "nopreempt", TOPOLOGY) as (plan, stack):
        ctx = FaultContext(stack.containers, plan.run_id, plan, random.Random(7))

        def holder() -> str | None:
            return vip_holder(stack.containers, plan, "lb")

        def fail_over() -> str:
            """Stop the holder's Keepalived, wait for the other to take the VIP, start it again."""
            spec = FaultSpec.model_validate(
                {"vip_failover": {"service": "lb", "method": "stop_keepalived"}}
            )
            fault = chaos.make(spec.kind, spec.params, ctx)
            before = fault.detail["holder_before"]
            other = "lb-2" if before == "lb-1" else "lb-1"
            fault.inject()
            try:
                eventually(holder, other, 10)
            finally:
                fault.rollback()
            assert pk.wait_running(stack.containers[before], "keepalived", 5)
            return other

        deadline = time.monotonic() + 20
        while holder() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if holder() == "lb-2":  # lb-2 won the first election: move the VIP to lb-1 first
            assert fail_over() == "lb-1"
        eventually(holder, "lb-1", 5)
        assert fail_over() == "lb-2"
        # lb-1 (priority 150 against 140) runs again: preempting, it would take the VIP back
        # within an advert or two. Watch for 3 x advert_int + skew and more.
        seen = set()
        watch_until = time.monotonic() + 6
        while time.monotonic() < watch_until:
            seen.add(holder())
            time.sleep(0.2)
        assert seen == {"lb-2"}
