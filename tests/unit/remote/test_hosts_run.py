"""`harness run` on runtime: hosts without SSH: which class runs a file, where the load goes,
what validation refuses before anything starts, the ssh command lines the watchers run, and
what they make of the lines that come back (VIP holders, Keepalived's and HAProxy's lines)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from harness.errors import SpecError
from harness.remote.chaos import HostChaos
from harness.remote.faults import build
from harness.remote.shell import DryShell
from harness.remote.stream import ssh_argv
from harness.remote.targets import hosts_of
from harness.remote.watch import HostWatchers, follow_command
from harness.run.hosts import HostsRun, load_url, runtime_of
from harness.spec.loader import load_topology
from tests.fakes import FakeExporter

TOPO = """\
version: 1
name: hosts
runtime: hosts
allow: [10.0.0.0/24]
services:
  lb:
    kind: haproxy
    backends: web
    hosts: [ssh://ops@10.0.0.11, ssh://ops@10.0.0.12:2222]
    keepalived: {vip: 10.0.0.100}
    lab: true
    control: {log: /var/log/haproxy.log}
  web: {kind: web, sessions: files, hosts: [ssh://ops@10.0.0.21, ssh://ops@10.0.0.22], lab: true}
  db: {kind: mariadb, hosts: [ssh://ops@10.0.0.31]}
load: {duration: 10s}
chaos:
  - {name: kill web-1, at: 1s, fault: {kill: web-1}}
  - {name: fail over, at: 2s, fault: {vip_failover: {service: lb}}}
assertions:
  - {name: budget, during: run, error_budget: {max_error_ratio: 0.1}}
"""


def topo_file(tmp_path: Path, text: str = TOPO) -> Path:
    p = tmp_path / "h.yaml"
    p.write_text(text)
    return p


def test_the_runtime_of_a_file_picks_the_run(tmp_path: Path) -> None:
    assert runtime_of(topo_file(tmp_path)) == "hosts"
    assert runtime_of(topo_file(tmp_path, "name: x\n")) == "docker"
    assert runtime_of(tmp_path / "missing.yaml") == "docker"


def test_the_load_goes_through_the_vip_or_the_first_lb_host(tmp_path: Path) -> None:
    topo = load_topology(topo_file(tmp_path), require_assertions=False)
    assert load_url(topo, hosts_of(topo)) == "http://10.0.0.100"
    no_vip = TOPO.replace("    keepalived: {vip: 10.0.0.100}\n", "").replace(
        "  - {name: fail over, at: 2s, fault: {vip_failover: {service: lb}}}\n", ""
    )
    topo = load_topology(topo_file(tmp_path, no_vip), require_assertions=False)
    assert load_url(topo, hosts_of(topo)) == "http://10.0.0.11"


REFUSED = {  # what the run's validation says -> the edit of TOPO that earns it
    "not marked lab: true": ("lab: true", "lab: false"),
    "load.url": ("load: {duration: 10s}", "load: {duration: 10s, url: 'http://192.168.9.9'}"),
}


@pytest.mark.parametrize("says", list(REFUSED))
def test_a_hosts_run_refuses_before_anything_starts(tmp_path: Path, says: str) -> None:
    with pytest.raises(SpecError) as e:
        HostsRun(topo_file(tmp_path, TOPO.replace(*REFUSED[says])), runs_dir=tmp_path / "runs")
    assert says in "\n".join(e.value.problems)
    assert not (tmp_path / "runs").exists()  # refused before a run directory exists


def test_i_know_lets_a_run_on_production_hosts_through_validation(tmp_path: Path) -> None:
    run = HostsRun(
        topo_file(tmp_path, TOPO.replace("lab: true", "lab: false")),
        runs_dir=tmp_path / "runs",
        i_know=True,
        say=lambda m: None,
    )
    assert run.load_url == "http://10.0.0.100" and list(run.hosts) == [
        "lb-1",
        "lb-2",
        "web-1",
        "web-2",
        "db",
    ]


def test_ssh_argv_uses_the_config_user_and_port(tmp_path: Path) -> None:
    hosts = hosts_of(load_topology(topo_file(tmp_path), require_assertions=False))
    argv = ssh_argv(hosts["lb-2"], "echo 'hi'", "/tmp/cfg")
    assert argv[:3] == ["ssh", "-F", "/tmp/cfg"] and "BatchMode=yes" in argv
    # its own connection: a user's ControlMaster auto + ControlPersist leaves no master behind
    opts = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert {"ControlMaster=no", "ControlPath=none"} <= set(opts)
    assert argv[-4:] == ["-p", "2222", "ops@10.0.0.12", "sh -c 'echo '\"'\"'hi'\"'\"''"]


def test_the_ssh_shell_asks_testinfra_for_no_control_master() -> None:
    from harness.remote.shell import SshShell
    from harness.remote.targets import Host

    web = Host("web-1", "web", "web", "ssh://ops@10.0.0.21", "10.0.0.21", True)
    backend = SshShell("/tmp/cfg")._host(web)
    cmd = " ".join(backend.backend._build_ssh_command("true")[0])  # type: ignore[attr-defined]
    assert "-o ControlMaster=no -o ControlPath=none" in cmd and "ControlPersist" not in cmd


def test_logs_are_followed_from_journald_by_default_or_a_file() -> None:
    journal = follow_command(None, "haproxy")
    assert journal.endswith("echo 'harness: following'; exec journalctl -f -n0 -o cat -u haproxy")
    # a unit that is not loaded, or a journal the SSH user may not read, ends it (not silence)
    assert journal.startswith("systemctl show -p LoadState haproxy")  # systemd < 230: no --value
    assert "grep -qx LoadState=loaded" in journal
    assert "|| exit 4;" in journal and "|| exit 5;" in journal
    assert follow_command("journal", "keepalived").endswith("-u keepalived")
    assert follow_command("/var/log/x y.log", "haproxy") == (
        "test -r '/var/log/x y.log' || exit 3; echo 'harness: following'; "
        "exec tail -F -n0 '/var/log/x y.log' 2>/dev/null"
    )


def watchers(tmp_path: Path) -> tuple[HostWatchers, FakeExporter]:
    topo = load_topology(topo_file(tmp_path), require_assertions=False)
    ex = FakeExporter()
    return HostWatchers(topo, hosts_of(topo), ex, 0.0, 100.0, "/tmp/cfg"), ex


def test_watchers_follow_each_lb_hosts_log_vip_and_keepalived(tmp_path: Path) -> None:
    w, _ = watchers(tmp_path)
    cmds = [(s.host.instance, s.command) for s in w.streams]
    assert ("lb-1", follow_command("/var/log/haproxy.log", "haproxy")) in cmds
    assert ("lb-2", follow_command(None, "keepalived")) in cmds
    assert sum("' 10.0.0.100/'" in c for _, c in cmds) == 2  # one VIP loop per LB host
    logs = [i for i, c in cmds if "is-active" not in c]  # every host has a status loop
    assert logs and all(i.startswith("lb-") for i in logs)


def test_vip_samples_make_holders_history_and_gauges(tmp_path: Path) -> None:
    w, ex = watchers(tmp_path)
    assert not w.sampled()
    w._set("lb", "lb-1", True, 10.0)
    w._set("lb", "lb-2", False, 10.0)
    assert w.sampled() and w.vip_holders() == {"lb": "lb-1"}
    w._set("lb", "lb-1", False, 12.0)  # the holder died: nobody, then lb-2
    w._set("lb", "lb-2", True, 12.5)
    assert w.history()["vip_holder"] == {"lb": [[10.0, "lb-1"], [12.0, None], [12.5, "lb-2"]]}
    assert (("lb", "lb-2"), 12.5) in ex.of("vip_acquired")


def test_keepalived_lines_of_its_log_or_a_notify_script(tmp_path: Path) -> None:
    w, ex = watchers(tmp_path)
    w._keepalived("lb-2", "Sun Dec 6 16:10:51 2026: (VI_1) Entering MASTER STATE", 5.0)
    w._keepalived("lb-1", "1765037411.123 INSTANCE VI_1 BACKUP 100", 6.0)
    w._keepalived("lb-1", "(VI_1) Sending gratuitous ARPs", 7.0)
    assert ex.of("keepalived_state") == [(("lb-2", "MASTER"), 5.0), (("lb-1", "BACKUP"), 6.0)]


def test_lb_log_lines_become_backend_states(tmp_path: Path) -> None:
    w, ex = watchers(tmp_path)
    log = next(x for x in w.logs if x.instance == "lb-1")
    log.handle('2026-12-06T16:10:51.500000Z {"log":"[WARNING] Server app/web-1 is DOWN"}')
    assert [e[2:] for e in log.events] == [("web-1", "DOWN")]
    assert ex.of("backend_state")


def host_chaos(tmp_path: Path) -> tuple[HostChaos, list[tuple[str, str]]]:
    """TOPO's chaos over a dry shell (nobody holds the VIP), and what it told the run."""
    topo = load_topology(topo_file(tmp_path), require_assertions=False)
    shell = DryShell(
        lambda m: None, {"ip -o -4 addr show | grep -qw 10.0.0.100 && echo holder || true": ""}
    )
    told: list[tuple[str, str]] = []
    chaos = HostChaos(
        topo,
        hosts_of(topo),
        shell,
        None,
        "R",
        lambda m: None,
        notify=lambda what, e: told.append((what, e["name"])),
        snapshot=lambda: {"vip_holders": {"lb": "lb-1"}},
    )
    return chaos, told


def test_host_chaos_tells_the_run_and_journals_the_vip_holders(tmp_path: Path) -> None:
    chaos, told = host_chaos(tmp_path)
    ticks: list[Any] = []
    chaos.run(0.0, lambda: ticks.append(1))
    assert ("injected", "kill web-1") in told and ("rolled_back", "kill web-1") in told


def test_latency_via_toxiproxy_is_dnat_to_the_harness_relay(tmp_path: Path) -> None:
    text = TOPO.replace(
        "load: {duration: 10s}",
        "links: [{from: web, to: db, via: toxiproxy}]\nload: {duration: 10s}",
    ).replace(
        "assertions:",
        "  - {name: slow, at: 3s, for: 2s, fault: {latency: {link: web->db, latency: 300ms}}}\n"
        "assertions:",
    )
    topo = load_topology(topo_file(tmp_path, text), require_assertions=False)
    shell = DryShell(lambda m: None)
    f = build(topo.chaos[-1], topo, hosts_of(topo), shell, "R", random.Random(0))
    rule = (
        "OUTPUT -p tcp -d 10.0.0.31 --dport 3306 -m comment --comment harness:slow@db "
        "-j DNAT --to-destination RELAY"
    )
    assert [(h.instance, c) for h, c in f.inject] == [
        ("web-1", f"iptables -w -t nat -I {rule}"),
        ("web-2", f"iptables -w -t nat -I {rule}"),
    ]
    assert f.rollback[0][1] == f"while iptables -w -t nat -D {rule} 2>/dev/null; do :; done"
    assert f.relays == ["slow@db"] and "Toxiproxy" in f.note
    # without via: the host's own netem, as before
    plain = text.replace(", via: toxiproxy", "")
    topo = load_topology(topo_file(tmp_path, plain), require_assertions=False)
    f = build(topo.chaos[-1], topo, hosts_of(topo), shell, "R", random.Random(0))
    assert "netem delay 300ms" in f.inject[0][1] and not f.relays


def test_the_relay_slows_a_real_connection(tmp_path: Path) -> None:
    import socket
    import threading
    import time

    from harness.remote.relay import Relays

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def echo() -> None:
        conn, _ = srv.accept()
        conn.sendall(conn.recv(10))
        conn.close()

    threading.Thread(target=echo, daemon=True).start()
    relays = Relays(seed=1)
    try:
        listen = relays.open("t", "127.0.0.1", f"127.0.0.1:{srv.getsockname()[1]}", 0.2, 0.0)
        host, port = listen.rsplit(":", 1)
        t0 = time.monotonic()
        with socket.create_connection((host, int(port)), timeout=5) as c:
            c.sendall(b"ping")
            assert c.recv(10) == b"ping"
        assert time.monotonic() - t0 >= 0.19
    finally:
        relays.close()
        srv.close()


def test_a_run_keeps_the_faults_on_until_locust_has_stopped_and_an_error_undoes_them(
    tmp_path: Path,
) -> None:
    """`undo=False` (what a hosts run asks): the faults still on at the load's end stay on,
    for the run to undo once Locust has stopped sending; an error still undoes them here."""
    kept, told = host_chaos(tmp_path)
    kept.run(0.0, undo=False)
    assert ("injected", "kill web-1") in told and ("rolled_back", "kill web-1") not in told
    assert "kill web-1" in {e["name"] for _, e, _ in kept.active}
    kept.rollback_all()
    assert ("rolled_back", "kill web-1") in told and not kept.active

    failing, told = host_chaos(tmp_path)

    def tick() -> None:
        if ("injected", "kill web-1") in told:
            raise RuntimeError("Locust died")

    with pytest.raises(RuntimeError):
        failing.run(5.0, tick, undo=False)
    assert ("rolled_back", "kill web-1") in told and not failing.active


def test_harness_up_on_a_hosts_run_is_refused_before_anything_starts(tmp_path: Path) -> None:
    run = HostsRun(topo_file(tmp_path), runs_dir=tmp_path / "runs")
    with pytest.raises(SpecError, match="runtime: hosts names machines that are up already"):
        run.bring_up()
    assert run.prom is None and run.exporter is None and run.locust is None
