"""runtime: hosts measures ha.yaml's last three assertions too: the stored orders read on the
database host, testinfra over ssh://, and the recovery watcher fed by the SSH watchers. The
SSH and the real machines are exercised in tests/integration/test_hosts_run.py; here the
commands, the choice of host and the watcher's decisions."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness import kinds
from harness.errors import InfrastructureError
from harness.remote.shell import Result
from harness.remote.steady import HostLayout, recovery_watcher
from harness.remote.targets import Host, hosts_of
from harness.remote.watch import HostWatchers, status_command
from harness.run import hosts_post
from harness.run.hosts import HostsRun
from harness.spec.loader import load_topology
from tests.fakes import FakeExporter
from tests.unit.remote.test_hosts_run import TOPO, topo_file

ALL_THREE = TOPO.replace(
    "  - {name: budget",
    "  - no_lost_writes: {}\n  - recovery_time: {max: 10s}\n"
    "  - {name: checked, testinfra: {module: web_node.py, hosts: web}}\n  - {name: budget",
)


class Hosts:
    """A Shell answering per host: `out[instance]` for every command (rc 0), `rc` to fail."""

    def __init__(self, out: dict[str, str], rc: int = 0) -> None:
        self.out, self.rc = out, rc
        self.commands: list[tuple[str, str]] = []

    def run(self, host: Host, command: str) -> Result:
        self.commands.append((host.instance, command))
        return Result(self.rc, self.out.get(host.instance, ""), "Access denied" if self.rc else "")


def topo(tmp_path: Path, text: str = ALL_THREE) -> Any:
    (tmp_path / "web_node.py").write_text("def test_x(host):\n    pass\n")
    return load_topology(topo_file(tmp_path, text), require_assertions=False)


def acked(run_dir: Path, ids: list[str]) -> None:
    rows = [{"event": "write_acked", "id": i} for i in ids]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_hosts_run_accepts_the_three_assertions(tmp_path: Path) -> None:
    topo(tmp_path)
    run = HostsRun(topo_file(tmp_path, ALL_THREE), runs_dir=tmp_path / "runs", say=lambda m: None)
    assert {a.kind for a in run.topo.assertions} >= {"no_lost_writes", "recovery_time"}


def test_orders_are_read_on_the_database_host_with_the_kinds_command(tmp_path: Path) -> None:
    t = topo(tmp_path)
    acked(tmp_path, ["a", "b", "c"])
    shell = Hosts({"db": "a\nc\nz\n"})
    assert hosts_post.check_writes(t, hosts_of(t), shell, tmp_path) == (3, 1, ["b"])
    assert shell.commands == [("db", "mysql -N -B -e 'SELECT id FROM app.orders'")]


def test_control_read_orders_overrides_and_a_failure_names_the_field(tmp_path: Path) -> None:
    text = ALL_THREE.replace(
        "db: {kind: mariadb, hosts: [ssh://ops@10.0.0.31]}",
        "db: {kind: mariadb, hosts: [ssh://ops@10.0.0.31], control: {read_orders: 'my-ids'}}",
    )
    t = topo(tmp_path, text)
    acked(tmp_path, [])
    with pytest.raises(InfrastructureError, match=r"my-ids.*exited 1.*Access denied.*db\.control"):
        hosts_post.check_writes(t, hosts_of(t), Hosts({}, rc=1), tmp_path)


def test_a_database_with_a_vip_is_read_on_its_holder(tmp_path: Path) -> None:
    text = ALL_THREE.replace(
        "db: {kind: mariadb, hosts: [ssh://ops@10.0.0.31]}",
        "db: {kind: mariadb, hosts: [ssh://ops@10.0.0.31, ssh://ops@10.0.0.32], "
        "replication: {mode: async}, keepalived: {vip: 10.0.0.101}}",
    )
    t = topo(tmp_path, text)
    shell = Hosts({"db-2": "holder\n"})
    assert hosts_post.primary(t, hosts_of(t), shell, "db").instance == "db-2"
    with pytest.raises(InfrastructureError, match="no host of db holds its VIP 10.0.0.101"):
        hosts_post.primary(t, hosts_of(t), Hosts({}), "db")


def test_a_database_kind_without_a_host_command_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = kinds.descriptor

    def without(kind: str) -> Any:
        d = real(kind)
        return type(d)(**{**d.__dict__, "host_read_orders": None}) if kind == "mariadb" else d

    monkeypatch.setattr(kinds, "descriptor", without)
    (problem,) = hosts_post.refusals(topo(tmp_path), "h.yaml")
    assert problem.startswith("h.yaml: services.db.control.read_orders: no_lost_writes needs")
    assert hosts_post.refusals(topo(tmp_path, TOPO), "h.yaml") == []  # not asserted: no need


def test_testinfra_runs_over_ssh_on_every_host_of_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def run_pytest(module: Path, hosts: list[str], run_dir: Path, **kw: Any) -> tuple[int, int]:
        seen.update(module=module, hosts=hosts, **kw)
        return 4, 0

    monkeypatch.setattr(hosts_post.hostcheck, "run_pytest", run_pytest)
    t = topo(tmp_path)
    got = hosts_post.check_testinfra(
        tmp_path / "m.py", hosts_of(t), "web", tmp_path, index=2, ssh_config="/tmp/cfg"
    )
    assert got == (4, 0) and seen["index"] == 2
    assert seen["hosts"] == ["ssh://ops@10.0.0.21", "ssh://ops@10.0.0.22"]
    # no ControlMaster made or used, even with a user's ControlMaster auto + ControlPersist
    no_master = "--ssh-extra-args=-o ControlMaster=no -o ControlPath=none"
    assert seen["extra"] == (no_master, "--ssh-config=/tmp/cfg")
    monkeypatch.delenv("HARNESS_SSH_CONFIG", raising=False)
    hosts_post.check_testinfra(tmp_path / "m.py", hosts_of(t), "web", tmp_path, index=0)
    assert seen["extra"] == (no_master,)


def test_each_hosts_service_status_is_systemd_or_its_control(tmp_path: Path) -> None:
    text = TOPO.replace("control: {log:", "control: {status: 'pgrep -x haproxy', log:")
    t = topo(tmp_path, text)
    assert status_command(t, "lb") == "( pgrep -x haproxy )"
    assert status_command(t, "web") == "systemctl is-active --quiet nginx"


def watched(tmp_path: Path) -> tuple[Any, HostWatchers, FakeExporter]:
    t = topo(tmp_path)
    ex = FakeExporter()
    w = HostWatchers(t, hosts_of(t), ex, 0.0, 100.0)
    for i in hosts_of(t):
        w._status(i, True, time.time())
    for f in w.followers:
        f.stream.following = True  # each LB log's command said it reads the log
    return t, w, ex


def test_the_vip_holder_at_the_start_leads_its_service(tmp_path: Path) -> None:
    t = topo(tmp_path)
    layout = HostLayout(hosts_of(t), {"lb": "lb-2"})
    assert [h.instance for h in layout.instances("lb")] == ["lb-2", "lb-1"]
    assert [h.instance for h in layout.instances("web")] == ["web-1", "web-2"]
    assert layout.container("web-2").service == "web"
    with pytest.raises(StopIteration):
        layout.container("nope")


def test_recovery_on_hosts_waits_for_backends_vip_services_and_clients(tmp_path: Path) -> None:
    t, w, ex = watched(tmp_path)
    w._set("lb", "lb-1", True, 1.0)
    w._set("lb", "lb-2", False, 1.0)
    rec = recovery_watcher(t, hosts_of(t), w, ex, ["locust"])
    rec.background, rec.period = False, 0.0
    rec.poll = lambda now=None: rec.record("http://locust/metrics", 0.0, now or 0.0)  # type: ignore[method-assign]
    assert rec.lbs_in_front == {"web": ["lb-1", "lb-2"]}
    lb1 = next(x for x in w.logs if x.instance == "lb-1")
    lb1.handle('2026-12-06T16:10:51.500000Z {"log":"[WARNING] Server app/web-2 is DOWN"}')
    w._status("db", False, time.time())
    w._set("lb", "lb-1", False, 2.0)
    w._set("lb", "lb-2", True, 2.0)
    rec.arm(10.0)
    rec.tick(10.0)
    assert "lb-1 reports web-2 DOWN" in rec.why and "not running: db" in rec.why
    assert "VIP of lb on lb-2, not lb-1" in rec.why
    rec.expected_down.add("lb-1")  # the failover's target is down on purpose
    lb1.handle('2026-12-06T16:10:52.500000Z {"log":"[WARNING] Server app/web-2 is UP"}')
    w._status("db", True, time.time())
    rec.tick(11.0)
    assert "steady for 0.00s" in rec.why and rec.recovered_at is None
    rec.tick(13.5)
    assert rec.recovered_at == 11.0 and rec.spans == [(10.0, 11.0)]
    assert ((), 11.0) in ex.of("recovered")


def test_the_schema_knows_control_status_and_read_orders() -> None:
    import yaml

    jsonschema = pytest.importorskip("jsonschema")
    from harness.spec.schema import json_schema

    check = jsonschema.Draft202012Validator(json_schema())
    data = yaml.safe_load(ALL_THREE)
    data["services"]["db"]["control"] = {"status": "pgrep -x mariadbd", "read_orders": "ids"}
    assert list(check.iter_errors(data)) == []
    for bad in ({"read_orders": ""}, {"state": "pgrep x"}):
        data["services"]["db"]["control"] = bad
        assert list(check.iter_errors(data)), bad


def test_the_hosts_watcher_reads_remote_workers_too(tmp_path: Path) -> None:
    """Review 16 #4: a remote worker's failures are its own (the master does not export them)."""
    text = ALL_THREE.replace(
        "load: {duration: 10s}",
        "load: {duration: 10s, master: {bind: 10.0.0.5, port: 5557, "
        "remote_workers: ['10.0.0.7:9646']}}",
    )
    t = topo(tmp_path, text)
    w = HostWatchers(t, hosts_of(t), FakeExporter(), 0.0, 100.0)
    rec = recovery_watcher(t, hosts_of(t), w, FakeExporter(), ["127.0.0.1:9000"])
    assert rec.urls == ["http://127.0.0.1:9000/metrics", "http://10.0.0.7:9646/metrics"]
    rec.stop()


def test_read_orders_on_a_service_that_is_not_the_database_is_refused(tmp_path: Path) -> None:
    """Review 16 #7: it was silently ignored (only the database's orders are read)."""
    from harness.errors import SpecError

    text = ALL_THREE.replace(
        "  web: {kind: web, sessions: files,",
        "  web: {kind: web, control: {read_orders: 'my-ids'}, sessions: files,",
    )
    with pytest.raises(SpecError) as e:
        topo(tmp_path, text)
    (line,) = [p for p in e.value.problems if "read_orders" in p]
    assert line.endswith(
        "services.web.control.read_orders: only the database's orders are read "
        "(no_lost_writes reads them on db: move it to services.db.control, or remove it)"
    ), line
    assert line.startswith(f"{tmp_path}/h.yaml:13:"), line  # the web service's line
