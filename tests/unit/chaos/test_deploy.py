"""`rolling_restart` and `deploy` (harness/chaos/deploy.py) against fakes: the order of the
steps per batch (drain, wait for in-flight, maint, restart, wait ready, ready, wait UP), each
journaled before it is applied; canary weights; rollback after a failure puts every server back
in service; `recover` does the same from the journal alone. The real HAProxy, Nginx and Docker
run in tests/integration/test_deploys.py."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from harness.chaos import deploy, lbctl
from harness.chaos.base import FaultContext
from harness.errors import InfrastructureError
from harness.plan.build import make_plan
from harness.spec.models import Fault, Topology
from tests.fakes import FakeContainer

TOPO = {
    "name": "t",
    "services": {
        "lb": {"kind": "haproxy", "backends": "web"},
        "web": {"kind": "web", "replicas": 3},
        "redis": {"kind": "redis"},
        "mysql": {"kind": "mariadb"},
    },
}


class FakeHAProxy:
    """The runtime API of one HAProxy: server states, sessions and weights; a server a test
    marks busy keeps one session for `busy_reads` reads of `show stat`."""

    def __init__(self, servers: list[str]) -> None:
        self.state = dict.fromkeys(servers, "UP")
        self.weight = dict.fromkeys(servers, 1)
        self.busy: dict[str, int] = {}
        self.log: list[str] = []

    def __call__(self, c: Any, command: str, timeout: float = 2.0) -> str:
        self.log.append(command)
        words = command.split()
        if command == "show stat":
            rows = ["# pxname,svname,qcur,qmax,scur,status"]
            for s, st in self.state.items():
                left = self.busy.get(s, 0)
                if left:
                    self.busy[s] = left - 1
                rows.append(f"app,{s},0,0,{1 if left else 0},{st}")
            return "\n".join(rows + ["app,BACKEND,0,0,0,UP"])
        server = words[2].split("/")[1]
        if words[:2] == ["set", "server"]:
            self.state[server] = {"drain": "DRAIN", "maint": "MAINT", "ready": "UP"}[words[4]]
        elif words[:2] == ["set", "weight"]:
            self.weight[server] = 1 if words[3] == "100%" else int(words[3])
        return ""


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> tuple[FaultContext, FakeHAProxy, list[str]]:
    plan = make_plan(Topology.model_validate(TOPO), "r1", "10.99.0.0/24", [])
    containers = {c.instance: FakeContainer(c.instance, c.ip, c.kind) for c in plan.containers}
    api = FakeHAProxy(["web-1", "web-2", "web-3"])
    monkeypatch.setattr(lbctl, "haproxy", api)
    waited: list[str] = []
    monkeypatch.setattr(deploy, "wait_ready", lambda c, name, wait: waited.append(name))
    saves: list[int] = []
    ctx = FaultContext(containers, "r1", plan, checkpoint=lambda: saves.append(1))  # type: ignore[arg-type]
    ctx.saves = saves  # type: ignore[attr-defined]
    return ctx, api, waited


def fault(ctx: FaultContext, spec: dict[str, Any]) -> deploy.Fault:
    f = Fault.model_validate(spec)
    return deploy.Fault(f.params, ctx, kind=f.kind)


def test_lbs_in_front_come_from_the_rendered_config() -> None:
    plan = make_plan(Topology.model_validate(TOPO), "r1", "10.99.0.0/24", [])
    [lb] = lbctl.lbs_in_front(plan, "web")
    assert (lb.instance, lb.kind) == ("lb", "haproxy")
    assert lb.servers == {"web-1": "web-1", "web-2": "web-2", "web-3": "web-3"}
    assert lbctl.lbs_in_front(plan, "redis") == []


def test_canary_weights_give_the_canaries_their_share() -> None:
    stable, canary = lbctl.canary_weights(0.1, stable=2, canaries=1, top=256)
    assert stable == 256 and abs(canary / (canary + 2 * stable) - 0.1) < 0.005
    stable, canary = lbctl.canary_weights(0.9, stable=2, canaries=1, top=256)
    assert canary == 256 and abs(canary / (canary + 2 * stable) - 0.9) < 0.01


def test_a_rolling_restart_takes_one_node_out_at_a_time_through_the_lb(stack: Any) -> None:
    ctx, api, waited = stack
    api.busy["web-1"] = 3  # one request still in flight on web-1 for three reads
    f = fault(ctx, {"rolling_restart": {"service": "web", "batch": 1, "drain": True}})
    assert f.batches == [["web-1"], ["web-2"], ["web-3"]] and f.target == "web"
    f.inject()
    sets = [c for c in api.log if c.startswith("set")]
    assert sets == [
        cmd
        for n in ("web-1", "web-2", "web-3")
        for cmd in (
            f"set server app/{n} state drain",
            f"set server app/{n} state maint",
            f"set server app/{n} state ready",
        )
    ]
    steps = [(s["step"], s.get("server") or s.get("node")) for s in f.detail["steps"]]
    assert steps[:7] == [
        ("drain", "web-1"),
        ("wait_in_flight", None),
        ("maint", "web-1"),
        ("restart", "web-1"),
        ("wait_ready", "web-1"),
        ("ready", "web-1"),
        ("wait_up", None),
    ]
    # maint only once web-1's last session ended
    first_maint = api.log.index("set server app/web-1 state maint")
    assert api.log[:first_maint].count("show stat") >= 4
    assert waited == ["web-1", "web-2", "web-3"]
    assert [ctx.containers[n].named("restart") for n in ("web-1", "web-2", "web-3")] == [
        [("restart", 5)]
    ] * 3
    assert set(f.detail["nodes"]) == {"web-1", "web-2", "web-3"}
    assert len(ctx.saves) >= len(f.detail["steps"])  # each step checkpointed before it ran
    assert set(api.state.values()) == {"UP"}


def test_without_drain_the_lb_is_not_touched(stack: Any) -> None:
    ctx, api, _ = stack
    f = fault(ctx, {"rolling_restart": {"service": "web", "batch": "all", "drain": False}})
    assert f.batches == [["web-1", "web-2", "web-3"]]
    f.inject()
    assert not [c for c in api.log if c.startswith("set")]
    assert all(ctx.containers[n].named("restart") for n in ("web-1", "web-2", "web-3"))


def test_a_canary_deploys_the_last_node_and_gives_it_its_weight(stack: Any, tmp_path: Path) -> None:
    ctx, api, _ = stack
    (tmp_path / "v2" / "public").mkdir(parents=True)
    (tmp_path / "v2" / "public" / "index.php").write_text("<?php echo 'v2';\n")
    ctx.base_dir = tmp_path
    puts: list[tuple[str, bytes]] = []
    web3 = ctx.containers["web-3"]
    web3.put_archive = lambda path, data: puts.append((path, data)) or True
    scripts: list[str] = []
    web3.exec_run = lambda cmd, **kw: (scripts.append(cmd[2]), (0, b""))[1]
    spec = {"service": "web", "app": "v2", "strategy": "canary", "weight": "10%"}
    f = fault(ctx, {"deploy": spec})
    assert f.batches == [["web-3"]] and f.canaries == ["web-3"]
    f.inject()
    assert api.weight["web-1"] == api.weight["web-2"] == 256
    share = api.weight["web-3"] / sum(api.weight.values())
    assert abs(share - 0.1) < 0.005
    [(dest, data)] = puts
    assert dest == "/srv/app"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
    assert "public/index.php" in names
    [script] = scripts
    assert "mv /srv/app /srv/app.previous" in script, "the replaced release is kept"
    assert not ctx.containers["web-1"].named("restart")
    f.rollback()  # the end of the run: weights back to the configured ones
    assert set(api.weight.values()) == {1}


def test_a_failed_restart_rolls_every_server_back_into_service(stack: Any) -> None:
    ctx, api, _ = stack
    ctx.containers["web-2"].fail.add("restart")
    f = fault(ctx, {"rolling_restart": {"service": "web"}})
    with pytest.raises(InfrastructureError, match="restart of web-2 failed"):
        f.inject()
    assert api.state["web-2"] == "MAINT"  # taken out, then the restart failed
    f.rollback()
    assert set(api.state.values()) == {"UP"}


def test_recover_puts_servers_back_from_the_journal_alone(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, api, _ = stack
    f = fault(ctx, {"rolling_restart": {"service": "web"}})
    api.state["web-1"] = "MAINT"  # the harness was SIGKILLed mid-batch
    ctx.containers["web-1"].status = "exited"

    class Client:
        class containers:  # noqa: N801 - the docker client's attribute
            @staticmethod
            def get(ref: str) -> FakeContainer:
                return next(c for c in ctx.containers.values() if c.id == ref)

    monkeypatch.setattr(deploy, "client", lambda: Client)
    lines = deploy.recover("rolling_restart", f.detail)
    assert api.state["web-1"] == "UP" and ctx.containers["web-1"].status == "running"
    assert any("started web-1" in line for line in lines)
    assert any("back in service" in line for line in lines)


def test_draining_a_service_no_lb_routes_to_is_refused_at_run_time(stack: Any) -> None:
    ctx, _, _ = stack
    with pytest.raises(InfrastructureError, match="nothing can drain it"):
        fault(ctx, {"rolling_restart": {"service": "redis", "drain": True}})


def test_nginx_is_driven_through_the_in_container_script() -> None:
    c = FakeContainer("lb")
    ran: list[list[str]] = []
    c.exec_run = lambda cmd, **kw: (ran.append(cmd), (0, b""))[1]  # type: ignore[method-assign]
    lbctl.nginx_rewrite(c, {"10.0.0.11"}, {"10.0.0.12": 100})  # type: ignore[arg-type]
    assert ran == [[lbctl.NGINX_UPSTREAMS, "admin", "10.0.0.11", "10.0.0.12=100"]]


def test_nginx_wait_up_asks_the_script_until_its_checks_serve_the_nodes() -> None:
    """The deploy moves on only once nginx-upstreams.sh `up` says the checks hold none of the
    batch down (tests/unit/kinds/test_nginx_upstreams.py runs `up` itself)."""
    c = FakeContainer("lb")
    answers = [1, 1, 0]
    ran: list[list[str]] = []
    c.exec_run = lambda cmd, **kw: (ran.append(cmd), (answers.pop(0), b""))[1]  # type: ignore[method-assign]
    lb = lbctl.Lb("lb", "nginx-lb", {"web-1": "10.0.0.11"}, lbctl.RELOAD)
    steps: list[dict[str, Any]] = []
    lbctl.wait_up(
        lb, c, ["10.0.0.11"], 5, lambda what, **kw: steps.append({"step": what}) or steps[-1]
    )  # type: ignore[arg-type]
    assert ran == [[lbctl.NGINX_UPSTREAMS, "up", "10.0.0.11"]] * 3
    assert steps[0]["step"] == "wait_up" and steps[0]["up"] is True
    answers[:] = [1] * 100
    with pytest.raises(InfrastructureError, match="did not see 10.0.0.11 UP"):
        lbctl.wait_up(lb, c, ["10.0.0.11"], 0.3, lambda what, **kw: {})  # type: ignore[arg-type]


def test_lb_kinds_declare_how_they_drain() -> None:
    [lb] = lbctl.lbs_in_front(
        make_plan(Topology.model_validate(TOPO), "r1", "10.9.0.0/24", []), "web"
    )
    assert (lb.how, lb.top_weight) == (lbctl.RUNTIME_API, 256)
    nginx = {
        **TOPO,
        "services": {**TOPO["services"], "lb": {"kind": "nginx-lb", "backends": "web"}},
    }
    plan = make_plan(Topology.model_validate(nginx), "r1", "10.9.0.0/24", [])
    [lb] = lbctl.lbs_in_front(plan, "web")
    assert lb.how == lbctl.RELOAD and lb.servers == {
        c.instance: c.ip for c in plan.instances("web")
    }
    with pytest.raises(InfrastructureError, match="cannot take a backend out"):
        lbctl.lb("redis", "redis", {})
