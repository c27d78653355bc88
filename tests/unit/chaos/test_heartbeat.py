"""Issue 13, ask 5: `heartbeat_freeze` stops the registration sidecar (SIGSTOP to the PID in
its pidfile) and rollback continues it (SIGCONT), once; a node without a sidecar is an error,
not a silent no-op; after a SIGKILLed harness, `recover` continues it from the journal."""

from __future__ import annotations

import random
from typing import Any

import pytest

from harness.chaos import container, heartbeat, make
from harness.chaos.base import FaultContext
from harness.errors import InfrastructureError
from harness.plan.build import make_plan
from harness.spec.models import HeartbeatFreezeFault
from tests.fakes import FakeContainer


class Node(FakeContainer):
    """A web node whose sidecar answers `kill -STOP|-CONT "$(cat pidfile)"`."""

    def __init__(self, instance: str, sidecar: bool = True) -> None:
        super().__init__(instance)
        self.sidecar = sidecar
        self.signals: list[str] = []

    def exec_run(self, cmd: list[str], detach: bool = False, stream: bool = False) -> Any:
        self._call("exec", tuple(cmd), detach)
        assert cmd[:2] == ["sh", "-c"] and heartbeat.PIDFILE in cmd[2]
        if not self.sidecar:
            return 1, b"cat: /run/harness-register.pid: No such file or directory"
        self.signals.append(cmd[2].split()[1])
        return 0, b""


def ctx(nodes: dict[str, Node]) -> FaultContext:
    from pathlib import Path

    from harness.spec.loader import load_topology

    repo = Path(__file__).resolve().parents[3]
    topo = load_topology(repo / "topologies" / "two-level.yaml")
    plan = make_plan(topo, "r1", "10.213.9.0/24", [])
    return FaultContext(dict(nodes), "r1", plan, random.Random(0))  # type: ignore[arg-type]


def test_freeze_stops_the_sidecar_and_rollback_continues_it_once() -> None:
    node = Node("web-2")
    fault = make("heartbeat_freeze", HeartbeatFreezeFault(target="web-2"), ctx({"web-2": node}))
    assert fault.target == "heartbeats@web-2"  # the journal's target names the instance
    assert fault.detail["containers"] == [
        {"instance": "web-2", "id": "id-web-2", "name": node.name}
    ]
    fault.inject()
    assert node.signals == ["-STOP"]
    fault.rollback()
    fault.rollback()  # safe twice
    assert node.signals == ["-STOP", "-CONT"]


def test_restore_false_leaves_the_heartbeats_frozen() -> None:
    node = Node("web-2")
    fault = make(
        "heartbeat_freeze",
        HeartbeatFreezeFault(target="web-2", restore=False),
        ctx({"web-2": node}),
    )
    fault.inject()
    fault.rollback()
    assert node.signals == ["-STOP"]


def test_a_node_without_a_sidecar_is_an_error() -> None:
    node = Node("web-2", sidecar=False)
    fault = make("heartbeat_freeze", HeartbeatFreezeFault(target="web-2"), ctx({"web-2": node}))
    with pytest.raises(InfrastructureError, match="no registration sidecar .* No such file"):
        fault.inject()


def test_a_stopped_node_has_nothing_to_continue() -> None:
    node = Node("web-2")
    fault = make("heartbeat_freeze", HeartbeatFreezeFault(target="web-2"), ctx({"web-2": node}))
    fault.inject()
    node.status = "exited"
    fault.rollback()
    assert node.signals == ["-STOP"]


def test_recover_continues_the_sidecar_from_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node("web-2")

    class Containers:
        def get(self, ref: str) -> Node:
            assert ref == "id-web-2"
            return node

    class Client:
        containers = Containers()

    monkeypatch.setattr(container, "client", lambda: Client())  # recover_each's
    detail = {"containers": [{"instance": "web-2", "id": "id-web-2", "name": "n"}], "restore": True}
    lines = heartbeat.recover("heartbeat_freeze", detail)
    assert node.signals == ["-CONT"] and lines == [
        "heartbeat_freeze: resumed the heartbeats of web-2 (n)"
    ]
    assert heartbeat.recover("heartbeat_freeze", detail | {"restore": False}) == []
