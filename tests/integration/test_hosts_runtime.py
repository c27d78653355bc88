"""`runtime: hosts` against real sshd: three of the harness's own containers (images/host/:
Debian's openssh-server, nginx, haproxy, keepalived, iptables) stand in for existing machines,
reached only over SSH with a key generated for this module, every address on the module's own
network. The harness builds and starts nothing on them: faults are the hosts' own tools
(`control:` commands instead of systemctl, which these containers lack; iptables; tc).

What is proven here: the dry run prints every command for every host and changes nothing;
stop, kill and partition are applied over SSH, seen in effect on the hosts, and undone; a
harness SIGKILLed mid-fault leaves the fault in place and `harness gc` undoes it from the
journal; a latency fault on a kernel without netem fails with a clear message and leaves
nothing behind."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.runtime import labels
from harness.runtime.docker import client
from harness.runtime.images import build
from harness.runtime.stack import create_network, teardown
from tests.integration.helpers import REPO, leftovers

pytestmark = pytest.mark.docker

CONTROL = {"stop": "nginx -s stop", "start": "nginx", "kill": "pkill -KILL -x nginx"}


class Lab:
    def __init__(self, tmp: Path, run_id: str, subnet: str, ips: dict[str, str]) -> None:
        self.tmp, self.run_id, self.subnet, self.ips = tmp, run_id, subnet, ips
        self.ssh_config = tmp / "ssh_config"

    def container(self, name: str) -> Any:
        return client().containers.get(labels.container_name(self.run_id, name))

    def sh(self, name: str, cmd: str) -> tuple[int, str]:
        code, out = self.container(name).exec_run(["sh", "-c", cmd])
        return int(code), out.decode(errors="replace")

    def nginx_up(self, name: str) -> bool:
        return self.sh(name, "pgrep -x nginx")[0] == 0

    def harness_rules(self, name: str) -> list[str]:
        return [r for r in self.sh(name, "iptables -S")[1].splitlines() if "harness:" in r]

    def topology(self, chaos: list[dict[str, Any]], lab: bool = True, duration: str = "8s") -> Path:
        spec = {
            "version": 1,
            "name": "hosts-it",
            "runtime": "hosts",
            "allow": [self.subnet],
            "services": {
                "lb": {
                    "kind": "haproxy",
                    "backends": "web",
                    "hosts": [f"ssh://root@{self.ips['h1']}"],
                    "lab": lab,
                },
                "web": {
                    "kind": "web",
                    "sessions": "files",
                    "hosts": [f"ssh://root@{self.ips['h2']}", f"ssh://root@{self.ips['h3']}"],
                    "control": CONTROL,
                    "lab": lab,
                },
                "db": {"kind": "mariadb", "hosts": [f"ssh://root@{self.ips['h1']}"], "lab": lab},
            },
            "links": [{"from": "web", "to": "db"}],  # the latency fault's link
            "load": {"duration": duration},
            "chaos": chaos,
        }
        path = self.tmp / f"hosts-{secrets.token_hex(2)}.yaml"
        path.write_text(json.dumps(spec))
        return path

    def env(self) -> dict[str, str]:
        return {**os.environ, "HARNESS_SSH_CONFIG": str(self.ssh_config), "COLUMNS": "200"}

    def harness(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "harness.cli", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("hosts")
    run_id = f"it-hosts-{secrets.token_hex(3)}"
    key = tmp / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30
    )
    tag = build("host", lambda m: None)
    try:
        network, subnet = create_network(run_id, "hosts-it")
        ips = {}
        for name in ("h1", "h2", "h3"):
            c = client().containers.run(
                tag,
                name=labels.container_name(run_id, name),
                detach=True,
                network=network.name,
                hostname=name,
                cap_add=["NET_ADMIN"],
                environment={"AUTHORIZED_KEY": key.with_suffix(".pub").read_text().strip()},
                labels=labels.for_run(run_id, "hosts-it", name, name),
            )
            c.reload()
            ips[name] = c.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        lab = Lab(tmp, run_id, subnet, ips)
        lab.ssh_config.write_text(
            f"Host *\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
            "  BatchMode yes\n"
        )
        deadline = time.monotonic() + 30
        while True:  # sshd up on all three
            probe = [
                subprocess.run(
                    ["ssh", "-F", str(lab.ssh_config), ip, "true"], capture_output=True, timeout=15
                ).returncode
                for ip in ips.values()
            ]
            if probe == [0, 0, 0]:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"sshd never answered: {probe}")
            time.sleep(0.5)
        yield lab
    finally:
        teardown(run_id)
        assert leftovers(run_id) == []


def wait_injected(runs: Path, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if list(runs.iterdir()):
            faults = journal_of(runs)["faults"]
            if sum(f["status"] == "injected" for f in faults) >= n:
                return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    out, _ = proc.communicate(timeout=30)
    pytest.fail(f"the faults were never all injected: {out}")


def journal_of(runs: Path) -> dict[str, Any]:
    [run] = sorted(runs.iterdir())
    return json.loads((run / "journal.json").read_text())


def test_check_connects_over_ssh_and_names_what_each_host_lacks(lab: Lab) -> None:
    proc = lab.harness("hosts", "check", str(lab.topology([])))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for inst in ("lb", "web-1", "web-2", "db"):
        assert f"{inst} ssh://root@" in proc.stdout
    assert "Linux" in proc.stdout and "missing systemctl" in proc.stdout  # no systemd here


def test_dry_run_prints_every_command_for_every_host_and_changes_nothing(lab: Lab) -> None:
    topo = lab.topology(
        [
            {"name": "stop web-1", "at": "1s", "for": "2s", "fault": {"stop": "web-1"}},
            {
                "name": "cut web-2 off",
                "at": "2s",
                "for": "2s",
                "fault": {"partition": {"target": "web-2", "peers": ["lb"]}},
            },
            {
                "name": "slow db",
                "at": "3s",
                "for": "2s",
                "fault": {"latency": {"link": "web->db", "latency": "300ms"}},
            },
        ],
        lab=False,
    )
    proc = lab.harness("hosts", "chaos", str(topo), "--dry-run")  # no --i-know needed to look
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    web1, web2, h1 = lab.ips["h2"], lab.ips["h3"], lab.ips["h1"]
    assert f"[web-1 ssh://root@{web1}] nginx -s stop" in out
    assert f"[web-1 ssh://root@{web1}] nginx" in out
    assert f"[web-2 ssh://root@{web2}] iptables -w -I INPUT -s {h1}" in out
    assert f"[web-2 ssh://root@{web2}] while iptables -w -D OUTPUT -d {h1}" in out
    for inst, ip in (("web-1", web1), ("web-2", web2)):  # latency on every `from` host
        assert f"[{inst} ssh://root@{ip}] dev=$(ip -o -4 route get {h1}" in out
    assert "netem delay 300ms" in out
    assert lab.nginx_up("h2") and lab.nginx_up("h3")
    assert lab.harness_rules("h3") == []


def test_destructive_faults_on_non_lab_hosts_need_i_know(lab: Lab, tmp_path: Path) -> None:
    topo = lab.topology([{"name": "stop web-1", "at": "1s", "fault": {"stop": "web-1"}}], lab=False)
    proc = lab.harness("hosts", "chaos", str(topo), "--runs-dir", str(tmp_path))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "not marked lab: true" in proc.stderr and "--i-know" in proc.stderr
    assert lab.nginx_up("h2") and not list(tmp_path.iterdir())  # nothing ran, nothing journaled


def test_stop_kill_and_partition_are_applied_over_ssh_and_undone(lab: Lab, tmp_path: Path) -> None:
    topo = lab.topology(
        [
            {"name": "stop web-1", "at": "1s", "for": "6s", "fault": {"stop": "web-1"}},
            {"name": "kill web-2", "at": "1s", "fault": {"kill": "web-2"}},
            {
                "name": "cut web-2 off",
                "at": "1s",
                "for": "6s",
                "fault": {"partition": {"target": "lb", "peers": ["web"]}},
            },
        ],
        duration="9s",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "hosts",
            "chaos",
            str(topo),
            "--runs-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        env=lab.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_injected(tmp_path, 3, proc)  # then inside every window
        assert not lab.nginx_up("h2"), "web-1 not stopped"
        assert not lab.nginx_up("h3"), "web-2 not killed"
        rules = lab.harness_rules("h1")  # on the LB's host, toward both web hosts
        assert len(rules) == 4 and all(lab.ips["h2"] in r or lab.ips["h3"] in r for r in rules)
        # the partition is real: web-2's host gets no answer from the LB's sshd (curl: timeout)
        assert lab.sh("h3", f"curl -s -m 1 http://{lab.ips['h1']}:22/")[0] == 28
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert lab.nginx_up("h2") and lab.nginx_up("h3")
    assert lab.harness_rules("h1") == []
    assert lab.sh("h3", f"curl -s -m 1 http://{lab.ips['h1']}:22/")[0] != 28  # answered again
    j = journal_of(tmp_path)
    assert j["status"] == "passed"
    assert [f["status"] for f in j["faults"]] == ["rolled_back"] * 3, j["faults"]
    kill = next(f for f in j["faults"] if f["name"] == "kill web-2")
    assert kill["detail"]["rollback"][0]["command"] == "nginx"  # journaled before it ran


def test_gc_undoes_a_host_fault_after_the_harness_is_sigkilled(lab: Lab, tmp_path: Path) -> None:
    topo = lab.topology(
        [
            {"name": "stop web-1", "at": "0s", "for": "50s", "fault": {"stop": "web-1"}},
            {
                "name": "cut web-2 off",
                "at": "0s",
                "for": "50s",
                "fault": {"partition": {"target": "web-2", "peers": "all"}},
            },
        ],
        duration="60s",
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "hosts",
            "chaos",
            str(topo),
            "--runs-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        env=lab.env(),
        stdout=(log := tmp_path.parent / "gc-chaos.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            runs = list(tmp_path.iterdir())
            if runs and sum(f["status"] == "injected" for f in journal_of(tmp_path)["faults"]) == 2:
                break
            time.sleep(0.2)
        else:
            proc.kill()
            pytest.fail(f"the faults were never journaled as injected: {log.read_text()}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # left behind: web-1 stopped; DROP rules in and out for each peer (lb, web-1, db)
    assert not lab.nginx_up("h2") and len(lab.harness_rules("h3")) == 6
    run_id = journal_of(tmp_path)["run_id"]
    gc = lab.harness("gc", run_id, "--runs-dir", str(tmp_path), "--rollback-only")
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert "rolled back" in gc.stdout
    assert lab.nginx_up("h2") and lab.harness_rules("h3") == []
    assert {f["status"] for f in journal_of(tmp_path)["faults"]} == {"recovered"}


def test_latency_without_netem_fails_clearly_and_leaves_nothing(lab: Lab, tmp_path: Path) -> None:
    topo = lab.topology(
        [
            {
                "name": "slow db",
                "at": "0s",
                "for": "3s",
                "fault": {"latency": {"link": "web->db", "latency": "300ms", "jitter": "50ms"}},
            }
        ],
        duration="4s",
    )
    proc = lab.harness("hosts", "chaos", str(topo), "--runs-dir", str(tmp_path))
    # the machine's kernel decides (the containers share it): with netem the fault must work
    kernel_has_netem = (
        lab.sh("h2", "tc qdisc add dev lo root netem delay 1ms && tc qdisc del dev lo root")[0] == 0
    )
    if kernel_has_netem:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "no netem qdisc" in proc.stderr, proc.stderr
        assert journal_of(tmp_path)["faults"][0]["status"] == "rolled_back"
    for h in ("h2", "h3"):
        assert "4e55" not in lab.sh(h, "tc qdisc show")[1]
