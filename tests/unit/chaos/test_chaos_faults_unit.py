"""Fault classes against fakes (a container that records calls and simulates its processes) and
the harness's real Toxiproxy server on loopback: what each fault does, idempotent rollback,
rollback after a failed inject, and recover() from a synthetic journal."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import chaos
from harness.chaos import container as container_mod
from harness.chaos import partition, process_kill
from harness.chaos.base import FaultContext, undo_each
from harness.chaos.recover import recover, recover_all
from harness.errors import InfrastructureError
from harness.plan.build import make_plan
from harness.spec.models import Fault as FaultSpec
from harness.spec.models import Topology
from harness.toxiproxy import ToxiproxyServer
from harness.toxiproxy.client import ToxiproxyClient
from tests.fakes import FakeContainer, FakeDocker

TOPO = {
    "version": 1,
    "name": "t",
    "services": {
        "lb": {"kind": "haproxy", "replicas": 2, "keepalived": {"vip": "auto"}, "backends": "web"},
        "web": {"kind": "web", "replicas": 3},
        "redis": {"kind": "redis"},
        "mysql": {"kind": "mariadb"},
    },
    "links": [{"from": "web", "to": "mysql"}],
}

@pytest.fixture
def ctx() -> FaultContext:
    plan = make_plan(Topology.model_validate(TOPO), "r1", "10.99.0.0/24", [])
    conts: dict[str, Any] = {
        c.instance: FakeContainer(c.instance, c.ip, c.kind) for c in plan.containers
    }
    conts["lb-1"].addrs.append(plan.vips["lb"])
    return FaultContext(conts, "r1", plan, random.Random(3))


def make(ctx: FaultContext, spec: dict[str, Any]) -> Any:
    f = FaultSpec.model_validate(spec)
    return chaos.make(f.kind, f.params, ctx)


# ------------------------------------------------------------------ registry


def test_every_fault_kind_of_the_spec_is_registered_with_fault_and_recover() -> None:
    assert set(FaultSpec.model_fields) == set(chaos.FAULTS)
    for kind in chaos.FAULTS:
        mod = chaos.module(kind)
        assert callable(mod.Fault) and callable(mod.recover), kind


def test_make_passes_the_kind_to_modules_serving_several(ctx: FaultContext) -> None:
    assert make(ctx, {"pause": "web-1"}).kind == "pause"
    assert make(ctx, {"stop": "web-1"}).kind == "stop"
    assert make(ctx, {"slicer": {"link": "web->mysql", "average_size": 10}}).kind == "slicer"
    assert make(ctx, {"kill": "web-1"}).kind == "kill"  # a module whose Fault takes no kind


# ------------------------------------------------------------------ container faults


def test_pause_then_rollback_twice_unpauses_once(ctx: FaultContext) -> None:
    fault = make(ctx, {"pause": "web-2"})
    web2 = ctx.containers["web-2"]
    assert fault.target == "web-2"
    assert fault.detail["containers"] == [
        {"instance": "web-2", "id": "id-web-2", "name": "harness-r1-web-2"}
    ]
    fault.inject()
    assert web2.status == "paused"
    fault.rollback()
    fault.rollback()
    assert web2.status == "running" and len(web2.named("unpause")) == 1


def test_partial_inject_is_rolled_back_where_it_was_tried(ctx: FaultContext) -> None:
    fault = make(ctx, {"pause": {"target": {"service": "web", "pick": "all"}}})
    ctx.containers["web-2"].fail.add("pause")
    with pytest.raises(InfrastructureError, match="pause web-2 failed: pause refused"):
        fault.inject()
    fault.rollback()
    assert ctx.containers["web-1"].status == "running" and ctx.containers["web-1"].named("unpause")
    assert not ctx.containers["web-2"].named("unpause")  # never got paused
    assert ctx.containers["web-3"].calls == []  # never tried


def test_a_failed_undo_is_kept_for_the_next_rollback_and_the_others_are_undone(
    ctx: FaultContext,
) -> None:
    fault = make(ctx, {"pause": {"target": {"service": "web", "pick": "all"}}})
    fault.inject()
    ctx.containers["web-2"].fail.add("unpause")
    with pytest.raises(InfrastructureError, match=r"^rollback of pause failed: web-2: unpause refused$"):
        fault.rollback()
    assert [ctx.containers[i].status for i in ("web-1", "web-2", "web-3")] == [
        "running",
        "paused",
        "running",
    ]
    assert fault.tried == ["web-2"]
    ctx.containers["web-2"].fail.clear()
    fault.rollback()
    assert ctx.containers["web-2"].status == "running" and fault.tried == []


def test_undo_each_skips_what_is_gone_and_names_every_failure() -> None:
    tried = ["a", "b", "c", "d"]

    def undo(inst: str) -> None:
        if inst == "b":
            raise KeyError(inst)  # gone
        if inst in ("c", "d"):
            raise ValueError(f"{inst} refused")

    with pytest.raises(InfrastructureError, match=r"^rollback of x failed: c: c refused; d: d refused$"):
        undo_each("x", tried, undo, gone=(KeyError,), failed=(ValueError,))
    assert tried == ["c", "d"]


def test_rollback_without_inject_does_nothing(ctx: FaultContext) -> None:
    for spec in (
        {"stop": "web-1"},
        {"pause": "web-1"},
        {"kill": {"target": "web-1", "restore": True}},
    ):
        make(ctx, spec).rollback()
    assert ctx.containers["web-1"].calls == []


def test_stop_starts_again_only_when_restore(ctx: FaultContext) -> None:
    fault = make(ctx, {"stop": "web-1"})
    fault.inject()
    assert ctx.containers["web-1"].named("stop") == [("stop", 5)]
    fault.rollback()
    fault.rollback()
    assert ctx.containers["web-1"].named("start") == [("start",)]
    kept = make(ctx, {"stop": {"target": "web-3", "restore": False}})
    kept.inject()
    kept.rollback()
    assert ctx.containers["web-3"].status == "exited" and not ctx.containers["web-3"].named("start")


def test_kill_stays_dead_by_default(ctx: FaultContext) -> None:
    fault = make(ctx, {"kill": "web-1"})
    fault.inject()
    fault.rollback()
    assert ctx.containers["web-1"].named("kill") == [("kill", "SIGKILL")]
    assert ctx.containers["web-1"].status == "exited"


def test_restart_rollback_is_a_no_op_on_a_running_node(ctx: FaultContext) -> None:
    fault = make(ctx, {"restart": "web-1"})
    fault.inject()
    fault.rollback()
    assert [c[0] for c in ctx.containers["web-1"].calls] == ["restart"]


# ------------------------------------------------------------------ process_kill


def test_process_kill_sigkill_hits_every_process_and_restarts_once(ctx: FaultContext) -> None:
    web1 = ctx.containers["web-1"]
    fault = make(ctx, {"process_kill": {"target": "web-1", "process": "php-fpm8.2"}})
    assert fault.target == "php-fpm8.2@web-1"
    fault.inject()
    assert web1.named("exec")[-1][1] == ("pkill", "--signal", "KILL", "-x", "php-fpm8.2")
    assert "php-fpm8.2" not in web1.procs
    fault.rollback()
    fault.rollback()
    starts = [c for c in web1.named("exec") if c[1][0] == "sh"]
    assert len(starts) == 1 and starts[0][2] is True  # detached
    assert process_kill.RESTART["php-fpm8.2"] in starts[0][1][2]
    assert "php-fpm8.2" in web1.procs


def test_process_kill_other_signals_go_to_the_master(ctx: FaultContext) -> None:
    make(
        ctx, {"process_kill": {"target": "lb-1", "process": "haproxy", "signal": "SIGTERM"}}
    ).inject()
    assert ctx.containers["lb-1"].named("exec")[-1][1][-1] == "-o"


def test_process_kill_of_a_missing_process_fails(ctx: FaultContext) -> None:
    fault = make(ctx, {"process_kill": {"target": "web-1", "process": "haproxy"}})
    with pytest.raises(InfrastructureError, match="no process called 'haproxy'"):
        fault.inject()


def test_process_kill_refuses_to_promise_a_restart_it_cannot_do(ctx: FaultContext) -> None:
    with pytest.raises(InfrastructureError, match="cannot restart 'redis-server'"):
        make(ctx, {"process_kill": {"target": "redis", "process": "redis-server"}})
    make(ctx, {"process_kill": {"target": "redis", "process": "redis-server", "restore": False}})


# ------------------------------------------------------------------ vip_failover


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("kill", ("kill", "SIGKILL")),
        (
            "stop_keepalived",
            ("exec", ("pkill", "--signal", "TERM", "-x", "keepalived", "-o"), False),
        ),
        ("kill_lb_process", ("exec", ("pkill", "--signal", "KILL", "-x", "haproxy"), False)),
    ],
)
def test_vip_failover_methods(ctx: FaultContext, method: str, call: tuple[Any, ...]) -> None:
    fault = make(ctx, {"vip_failover": {"service": "lb", "method": method}})
    assert fault.target == "lb-1" and fault.detail["holder_before"] == "lb-1"
    fault.inject()
    lb1 = ctx.containers["lb-1"]
    assert call in lb1.calls
    assert ctx.containers["lb-2"].named("kill") == []
    fault.rollback()
    fault.rollback()
    assert lb1.status == "running"
    assert fault.detail["process"] is None or fault.detail["process"] in lb1.procs
    assert len(lb1.named("start")) + len([c for c in lb1.named("exec") if c[1][0] == "sh"]) == 1


def test_rollback_waits_for_a_sigtermed_process_to_go_before_restarting(ctx: FaultContext) -> None:
    lb1 = ctx.containers["lb-1"]
    fault = make(ctx, {"vip_failover": {"service": "lb", "method": "stop_keepalived"}})
    fault.inject()
    fault.rollback()  # keepalived still shows up in three pgreps: it is stopping, not running
    starts = [c for c in lb1.named("exec") if c[1][0] == "sh"]
    assert len(starts) == 1 and "rm -f /run/keepalived.pid" in starts[0][1][2]
    assert "keepalived" in lb1.procs and not lb1.dying


def test_vip_failover_without_a_holder_fails(ctx: FaultContext) -> None:
    ctx.containers["lb-1"].addrs.pop()
    with pytest.raises(InfrastructureError, match="nobody holds the VIP of 'lb'"):
        make(ctx, {"vip_failover": "lb"})


# ------------------------------------------------------------------ toxics (real server, loopback)


@pytest.fixture
def toxi(ctx: FaultContext) -> Iterator[ToxiproxyClient]:
    srv = ToxiproxyServer(port=0).start_background()
    api = ToxiproxyClient(srv.base_url)
    api.create_proxy("web_to_mysql", "127.0.0.1:0", "127.0.0.1:9")
    ctx.plan.toxiproxy = {"web->mysql": (srv.base_url, "web_to_mysql")}
    yield api
    api.close()
    srv.stop_background()


TOXICS = [
    ("latency", {"latency": 0.3, "jitter": 0.05}, {"latency": 300, "jitter": 50}),
    ("bandwidth", {"rate": 64}, {"rate": 64}),
    ("timeout", {"timeout": 1.5}, {"timeout": 1500}),
    ("reset_peer", {"timeout": 0.2}, {"timeout": 200}),
    ("slow_close", {"delay": 2}, {"delay": 2000}),
    (
        "slicer",
        {"average_size": 64, "size_variation": 8, "delay": 0.001},
        {"average_size": 64, "size_variation": 8, "delay": 1000},
    ),
    ("limit_data", {"bytes": 4096}, {"bytes": 4096}),
]


@pytest.mark.parametrize(("kind", "params", "attrs"), TOXICS)
def test_toxic_added_with_attributes_and_removed(
    ctx: FaultContext,
    toxi: ToxiproxyClient,
    kind: str,
    params: dict[str, Any],
    attrs: dict[str, int],
) -> None:
    fault = make(
        ctx, {kind: {"link": "web->mysql", "stream": "upstream", "toxicity": 0.5, **params}}
    )
    fault.inject()
    [toxic] = toxi.toxics("web_to_mysql")
    assert toxic["name"] == fault.detail["toxic"] and toxic["name"].startswith(f"{kind}_upstream_")
    assert (toxic["type"], toxic["stream"], toxic["toxicity"]) == (kind, "upstream", 0.5)
    assert toxic["attributes"] == attrs
    fault.rollback()
    fault.rollback()
    assert toxi.toxics("web_to_mysql") == []


def test_two_toxics_of_one_kind_get_distinct_names(
    ctx: FaultContext, toxi: ToxiproxyClient
) -> None:
    a, b = (make(ctx, {"latency": {"link": "web->mysql", "latency": 0.1}}) for _ in range(2))
    a.inject()
    b.inject()
    assert len(toxi.toxics("web_to_mysql")) == 2
    a.rollback()
    assert [t["name"] for t in toxi.toxics("web_to_mysql")] == [b.detail["toxic"]]


def test_down_disables_and_rollback_enables(ctx: FaultContext, toxi: ToxiproxyClient) -> None:
    fault = make(ctx, {"down": "web->mysql"})
    fault.inject()
    assert toxi.get_proxy("web_to_mysql")["enabled"] is False
    fault.rollback()
    fault.rollback()
    assert toxi.get_proxy("web_to_mysql")["enabled"] is True


def test_toxic_rollback_after_a_failed_inject(ctx: FaultContext, toxi: ToxiproxyClient) -> None:
    toxi.delete_proxy("web_to_mysql")
    fault = make(ctx, {"latency": {"link": "web->mysql", "latency": 0.1}})
    with pytest.raises(InfrastructureError, match="latency on web->mysql: Toxiproxy at"):
        fault.inject()
    fault.rollback()  # the 404 means there is nothing to remove


def test_toxic_checks_its_inputs(ctx: FaultContext) -> None:
    with pytest.raises(InfrastructureError, match="no Toxiproxy for link 'web->redis'"):
        make(ctx, {"latency": {"link": "web->redis", "latency": 0.1}})
    with pytest.raises(InfrastructureError, match="'rate' is required"):
        make(ctx, {"bandwidth": "web->mysql"})


# ------------------------------------------------------------------ partition


def test_partition_drops_peers_and_link_ports_but_keeps_observers(ctx: FaultContext) -> None:
    p = ctx.plan
    ip = {c.instance: c.ip for c in p.containers}
    proxy = next(c for c in p.containers if c.kind == "toxiproxy")
    assert partition.drops(p, "web-1", ["mysql"]) == [ip["mysql"], f"{proxy.ip}:10000"]
    assert partition.drops(p, "web-1", ["web"]) == [ip["web-2"], ip["web-3"]]
    assert partition.drops(p, "web-1", ["lb-2"]) == [ip["lb-2"]]  # one replica: not the VIP
    everyone = partition.drops(p, "web-1", "all")
    assert p.vips["lb"] in everyone and ip["lb-1"] in everyone and proxy.ip in everyone
    assert (
        ip["web-1"] not in everyone
        and p.gateway not in everyone
        and ip["prometheus"] not in everyone
    )
    assert p.vips["lb"] not in partition.drops(p, "lb-1", "all")  # its own VIP is local


def test_partition_rollback_is_idempotent_and_follows_tries(
    ctx: FaultContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[str, str]] = []

    def fake(c: Any, script: str) -> str:
        ran.append((c.name, "add" if "-j DROP" in script else "remove"))
        if c.name.endswith("web-2") and "-j DROP" in script:
            raise InfrastructureError("iptables failed")
        return ""

    monkeypatch.setattr(partition, "in_netns", fake)
    fault = make(
        ctx, {"partition": {"target": {"service": "web", "pick": "all"}, "peers": ["mysql"]}}
    )
    assert fault.detail["comment"] == "harness:r1" and fault.detail["chain"] == "HARNESS-PART"
    with pytest.raises(InfrastructureError):
        fault.inject()
    fault.rollback()
    fault.rollback()
    assert ran == [
        ("harness-r1-web-1", "add"),
        ("harness-r1-web-2", "add"),
        ("harness-r1-web-1", "remove"),
        ("harness-r1-web-2", "remove"),
    ]


@pytest.mark.skipif(
    os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("iptables")),
    reason="needs root, unshare and iptables",
)
def test_partition_scripts_in_a_scratch_namespace() -> None:
    """The real iptables scripts, run in a throwaway network namespace: rules are tagged, the
    removal leaves nothing behind and may run twice."""
    add = partition.add_script(["10.9.0.5", "10.9.0.7:3306"], "harness:r1")
    script = f"{add}\niptables -w -S\necho ==\n{partition.REMOVE_SCRIPT}\n{partition.REMOVE_SCRIPT}\niptables -w -S"
    res = subprocess.run(
        ["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 0, res.stderr
    before, after = res.stdout.split("==")
    assert "-A INPUT -m comment --comment harness:r1 -j HARNESS-PART" in before.replace('"', "")
    assert "-d 10.9.0.7/32 -p tcp -m tcp --dport 3306" in before and "-s 10.9.0.5/32" in before
    assert all(
        "harness:r1" in line for line in before.splitlines() if line.startswith("-A HARNESS")
    )
    assert "HARNESS" not in after


# ------------------------------------------------------------------ recover


def write_journal(
    path: Path, entries: list[dict[str, Any]], status: str = "running", **extra: Any
) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    data = {"run_id": path.name, "status": status, "faults": entries, **extra}
    (path / "journal.json").write_text(json.dumps(data))
    return path


def entry(fault: Any, status: str = "injected") -> dict[str, Any]:
    return {
        "name": f"n-{fault.kind}",
        "kind": fault.kind,
        "target": fault.target,
        "status": status,
        "detail": json.loads(json.dumps(fault.detail)),
    }


def test_recover_undoes_what_a_killed_harness_left(
    ctx: FaultContext, toxi: ToxiproxyClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(container_mod, "client", lambda: FakeDocker(ctx.containers.values()))
    paused, toxic, stopped = (
        make(ctx, s)
        for s in (
            {"pause": "web-1"},
            {"latency": {"link": "web->mysql", "latency": 1}},
            {"stop": "web-3"},
        )
    )
    for f in (paused, toxic, stopped):
        f.inject()
    done = make(ctx, {"pause": "web-2"})
    run = write_journal(
        tmp_path / "run1",
        [entry(paused), entry(toxic, "scheduled"), entry(stopped), entry(done, "rolled_back")],
    )
    lines = recover(run)
    assert ctx.containers["web-1"].status == "running"
    assert toxi.toxics("web_to_mysql") == []
    assert ctx.containers["web-3"].status == "exited"  # not asked to start stopped nodes
    assert ctx.containers["web-2"].calls == []
    assert any("unpaused web-1" in line for line in lines) and any(
        "removed toxic" in line for line in lines
    )
    data = json.loads((run / "journal.json").read_text())
    assert [f["status"] for f in data["faults"]] == [
        "recovered",
        "recovered",
        "recovered",
        "rolled_back",
    ]
    assert recover(run) == []  # idempotent: nothing left to do


def test_recover_can_start_stopped_nodes(
    ctx: FaultContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(container_mod, "client", lambda: FakeDocker(ctx.containers.values()))
    stopped = make(ctx, {"kill": "web-3"})
    stopped.inject()
    lines = recover(
        write_journal(tmp_path / "r", [entry(stopped)]) / "journal.json", restart_stopped=True
    )
    assert ctx.containers["web-3"].status == "running" and "started web-3" in lines[0]


def test_recover_all_picks_runs_still_marked_running_whose_harness_is_gone(
    ctx: FaultContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(container_mod, "client", lambda: FakeDocker(ctx.containers.values()))
    faults = {i: make(ctx, {"pause": f"web-{i}"}) for i in (1, 2, 3)}
    for f in faults.values():
        f.inject()
    write_journal(tmp_path / "dead", [entry(faults[1])])
    write_journal(tmp_path / "finished", [entry(faults[2])], status="passed")
    write_journal(
        tmp_path / "alive", [entry(faults[3])], pid=os.getppid()
    )  # its harness still runs
    lines = recover_all(tmp_path)
    assert [line.split(":")[0] for line in lines] == ["dead"]
    assert [ctx.containers[f"web-{i}"].status for i in (1, 2, 3)] == ["running", "paused", "paused"]
