"""`runtime: hosts` without SSH: validation names file, line, field and fix; the safety rules
(`allow:` ranges, `lab:` / `--i-know`) refuse before any connection; each fault is the host
command its table promises, with an undo; the schedule journals before it applies and undoes
everything, also when a fault fails; the journal alone is enough to undo (harness gc)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfrastructureError, SpecError
from harness.journal import Journal
from harness.remote import faults
from harness.remote.chaos import HostChaos
from harness.remote.cli import dry_run, targets_by_step
from harness.remote.shell import Result
from harness.remote.targets import Host, hosts_of, refuse_outside, refuse_unconfirmed
from harness.spec.loader import load_topology

REPO = Path(__file__).resolve().parents[3]

BASE = """\
version: 1
name: hosts
runtime: hosts
allow: [10.0.0.0/24]
services:
  lb:
    kind: haproxy
    backends: web
    hosts: [ssh://ops@10.0.0.11, ssh://ops@10.0.0.12]
    keepalived: {vip: 10.0.0.100}
  web:
    kind: web
    sessions: files
    hosts: [ssh://ops@10.0.0.21, ssh://ops@10.0.0.22:2222]
    lab: true
  db: {kind: mariadb, hosts: [ssh://ops@10.0.0.31]}
links: [{from: web, to: db}]
load: {duration: 10s}
chaos:
  - {name: kill web-1, at: 1s, fault: {kill: web-1}}
  - {name: stop web-2, at: 1s, for: 2s, fault: {stop: web-2}}
  - {name: fail over, at: 2s, for: 2s, fault: {vip_failover: {service: lb}}}
  - {name: cut, at: 4s, for: 2s, fault: {partition: {target: web-2, peers: [db]}}}
  - {name: slow db, at: 6s, for: 2s, fault: {latency: {link: web->db, latency: 300ms, jitter: 20ms}}}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "h.yaml"
    p.write_text(text)
    return p


def load(tmp_path: Path, text: str = BASE) -> Any:
    return load_topology(write(tmp_path, text), require_assertions=False)


def problems(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as e:
        load(tmp_path, text)
    return "\n".join(e.value.problems)


def test_a_hosts_topology_loads_with_one_instance_per_host(tmp_path: Path) -> None:
    topo = load(tmp_path)
    hosts = hosts_of(topo)
    assert list(hosts) == ["lb-1", "lb-2", "web-1", "web-2", "db"]
    assert hosts["web-2"].address == "10.0.0.22" and hosts["web-2"].port == 2222
    assert hosts["lb-1"].user == "ops" and hosts["web-1"].lab and not hosts["lb-1"].lab
    assert topo.services["web"].replicas == 2


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("allow: [10.0.0.0/24]\n", ""), "h.yaml:3: runtime: hosts needs allow:"),
        (
            ("ssh://ops@10.0.0.31", "ssh://ops@192.168.9.9"),
            "h.yaml:16: services.db.hosts[0]: 192.168.9.9 is outside allow",
        ),
        (
            ("runtime: hosts\n", ""),
            "services.lb.hosts: hosts: names existing machines, which only runtime: hosts uses",
        ),
        (
            ("allow: [10.0.0.0/24]", "allow: [10.0.0.0/33]"),
            "h.yaml:4: allow[0]: '10.0.0.0/33' is not an IPv4 range",
        ),
        (
            ("ssh://ops@10.0.0.21,", "http://10.0.0.21,"),
            "services.web.hosts[0]: String should match",
        ),
        (("lab: true", "lab: true\n    replicas: 3"), "replicas: 3 but 2 hosts"),
        (("{kill: web-1}", "{pause: web-1}"), "pause has no hosts-runtime form"),
    ],
)
def test_bad_hosts_topologies_are_one_line_errors(
    tmp_path: Path, edit: tuple[str, str], needle: str
) -> None:
    old, new = edit
    assert old in BASE
    text = problems(tmp_path, BASE.replace(old, new, 1))
    assert needle in text, text
    assert all(line.count("h.yaml") == 1 for line in text.splitlines()), text


def test_hosts_outside_allow_are_refused_before_connecting_names_resolved(tmp_path: Path) -> None:
    topo = load(tmp_path)
    hosts = hosts_of(topo)
    refuse_outside(topo, hosts, "h.yaml")  # every literal inside
    named = dict(hosts)
    named["web-1"] = Host("web-1", "web", "web", "ssh://ops@localhost", "localhost", True)
    with pytest.raises(SpecError) as e:
        refuse_outside(topo, named, "h.yaml")
    assert "localhost (127.0.0.1) is outside allow: [10.0.0.0/24]" in e.value.problems[0]
    named["web-1"] = Host(
        "web-1", "web", "web", "ssh://ops@no-such.invalid", "no-such.invalid", True
    )
    with pytest.raises(SpecError, match="does not resolve"):
        refuse_outside(topo, named, "h.yaml")


def test_destructive_faults_on_non_lab_hosts_need_i_know(tmp_path: Path) -> None:
    topo = load(tmp_path)
    hosts = hosts_of(topo)
    targets = targets_by_step(topo, hosts)
    assert targets["kill web-1"] == ["web-1"] and targets["fail over"] == ["lb-1", "lb-2"]
    with pytest.raises(SpecError) as e:
        refuse_unconfirmed(topo, hosts, targets, False, "h.yaml")
    text = "\n".join(e.value.problems)
    assert "chaos 'fail over': vip_failover acts on lb-1, lb-2, not marked lab: true" in text
    assert "kill web-1" not in text  # web is lab: true
    assert "chaos 'cut'" not in text  # the partition's rules go on web-2 (lab)
    refuse_unconfirmed(topo, hosts, targets, True, "h.yaml")


class FakeShell:
    def __init__(self, fail: str = "", holder: str = "10.0.0.12") -> None:
        self.ran: list[tuple[str, str]] = []
        self.fail, self.holder = fail, holder

    def run(self, host: Host, command: str) -> Result:
        self.ran.append((host.instance, command))
        if "grep -qw" in command:
            return Result(0, "holder\n" if host.address == self.holder else "", "")
        if self.fail and self.fail in command:
            return Result(2, "", "Error: Specified qdisc kind is unknown.")
        return Result(0, "", "")


def build(tmp_path: Path, name: str, shell: Any = None) -> faults.HostFault:
    topo = load(tmp_path)
    step = next(s for s in topo.chaos if s.name == name)
    return faults.build(step, topo, hosts_of(topo), shell or FakeShell(), "r1", random.Random(0))


def test_kill_and_stop_use_systemd_units_by_default(tmp_path: Path) -> None:
    kill = build(tmp_path, "kill web-1")
    assert [(h.instance, c) for h, c in kill.inject] == [("web-1", "systemctl kill -s KILL nginx")]
    assert [c for _, c in kill.rollback] == ["systemctl start nginx"]
    stop = build(tmp_path, "stop web-2")
    assert [c for _, c in stop.inject] == ["systemctl stop nginx"]


def test_configured_commands_replace_systemctl(tmp_path: Path) -> None:
    text = BASE.replace(
        "    lab: true\n", "    lab: true\n    control: {stop: 'nginx -s stop', start: nginx}\n"
    )
    topo = load(tmp_path, text)
    step = next(s for s in topo.chaos if s.name == "stop web-2")
    f = faults.build(step, topo, hosts_of(topo), FakeShell(), "r1", random.Random(0))
    assert [c for _, c in f.inject] == ["nginx -s stop"] and [c for _, c in f.rollback] == ["nginx"]


def test_vip_failover_acts_on_the_host_holding_the_vip(tmp_path: Path) -> None:
    f = build(tmp_path, "fail over", FakeShell(holder="10.0.0.12"))
    assert [(h.instance, c) for h, c in f.inject] == [("lb-2", "systemctl kill -s KILL haproxy")]
    assert f.rollback[0][0].instance == "lb-2" and "10.0.0.100 held by lb-2" in f.note


def test_partition_is_tagged_iptables_rules_undone_exactly(tmp_path: Path) -> None:
    f = build(tmp_path, "cut")
    cmds = [c for _, c in f.inject]
    assert cmds == [
        "iptables -w -I INPUT -s 10.0.0.31 -m comment --comment harness:r1 -j DROP",
        "iptables -w -I OUTPUT -d 10.0.0.31 -m comment --comment harness:r1 -j DROP",
    ]
    assert all(h.instance == "web-2" for h, _ in f.inject)
    assert [c for _, c in f.rollback][0].startswith("while iptables -w -D INPUT -s 10.0.0.31 ")


def test_latency_is_netem_on_the_links_from_hosts_toward_its_to_hosts(tmp_path: Path) -> None:
    f = build(tmp_path, "slow db")
    assert [h.instance for h, _ in f.inject] == ["web-1", "web-2"]
    cmd = f.inject[0][1]
    assert "ip -o -4 route get 10.0.0.31" in cmd and "netem delay 300ms 20ms" in cmd
    assert "match ip dst 10.0.0.31/32 flowid 4e55:3" in cmd
    assert 'grep -q "prio 4e55:"' in f.rollback[0][1]  # only the harness's own root qdisc


def test_the_schedule_journals_before_applying_and_undoes_everything(tmp_path: Path) -> None:
    topo = load(tmp_path)
    shell = FakeShell()
    journal = Journal(tmp_path, "r1", "hosts", "h.yaml")
    seen_at_apply: list[str] = []
    real_run = shell.run

    def run(host: Host, command: str) -> Result:
        if "grep -qw" not in command and not command.startswith("while") and "start" not in command:
            saved = json.loads((tmp_path / "journal.json").read_text())
            seen_at_apply.append(saved["faults"][-1]["status"])
        return real_run(host, command)

    shell.run = run  # type: ignore[method-assign]
    HostChaos(topo, hosts_of(topo), shell, journal, "r1", lambda m: None).run(7.5)
    assert seen_at_apply and set(seen_at_apply) <= {"scheduled", "injected"}
    assert seen_at_apply[0] == "scheduled"  # on disk before the first command ran
    assert [f["status"] for f in journal["faults"]] == ["rolled_back"] * 5
    undone = [c for _, c in shell.ran if c.startswith(("systemctl start", "while iptables"))]
    assert len(undone) == 5  # kill, stop, vip failover, two partition rules


def test_a_failed_fault_is_undone_and_reported(tmp_path: Path) -> None:
    only = BASE.split("chaos:")[0] + "chaos:\n" + BASE.splitlines()[-1] + "\n"
    topo = load(tmp_path, only.replace("at: 6s, for: 2s", "at: 0s, for: 2s"))
    shell = FakeShell(fail="netem")
    journal = Journal(tmp_path, "r1", "hosts", "h.yaml")
    with pytest.raises(InfrastructureError, match="no netem qdisc"):
        HostChaos(topo, hosts_of(topo), shell, journal, "r1", lambda m: None).run(3)
    [f] = journal["faults"]
    assert f["status"] == "rolled_back" and "no netem qdisc" in f["error"]
    assert any("tc qdisc del" in c for _, c in shell.ran)


def test_the_journal_alone_undoes_a_host_fault(tmp_path: Path) -> None:
    detail = build(tmp_path, "cut").detail()
    shell = FakeShell()
    done = faults.recover(json.loads(json.dumps(detail)), shell)
    assert shell.ran == [(r["instance"], r["command"]) for r in detail["rollback"]]
    assert len(done) == 2 and not any(d.startswith("FAILED") for d in done)


def test_dry_run_lists_every_command_of_every_host_in_order(tmp_path: Path) -> None:
    topo = load(tmp_path)
    lines: list[str] = []
    shell = dry_run(topo, hosts_of(topo), lines.append)
    assert lines[0] == "at 1s: kill web-1"
    assert "[web-1 ssh://ops@10.0.0.21] systemctl kill -s KILL nginx" in lines
    assert "[web-2 ssh://ops@10.0.0.22:2222] systemctl stop nginx" in lines
    assert lines.index("at 2s: fail over") < lines.index("at 4s: cut")
    touched = {i for i, _ in shell.commands}
    assert touched == {"web-1", "web-2", "lb-1", "lb-2"}


def test_cli_refuses_a_host_outside_allow_with_exit_3(tmp_path: Path) -> None:
    path = write(tmp_path, BASE.replace("allow: [10.0.0.0/24]", "allow: [10.0.0.0/28]"))
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "hosts", "chaos", str(path), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "is outside allow: [10.0.0.0/28]" in proc.stderr and "Traceback" not in proc.stderr
    assert "systemctl" not in proc.stdout  # refused before printing any plan
