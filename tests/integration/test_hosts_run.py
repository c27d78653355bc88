"""`harness run` on `runtime: hosts`, against stand-in machines: a docker stack of the real
images (two HAProxy + Keepalived LBs sharing a VIP, two Nginx + PHP-FPM web nodes, Redis,
MariaDB) is brought up, then each of its containers gets an sshd "sidecar" (images/host) that
shares its network and process namespaces, reached only with a key generated for this module.
From the hosts topology's point of view these are machines at their addresses with a VIP,
processes and logs; the harness builds and starts nothing there.

The hosts topology is ha.yaml's stack with `hosts:`: the web node is killed (its Nginx, with
`pkill`, started again with the host's own command), the VIP holder's HAProxy is killed so
Keepalived moves the VIP, and all of ha.yaml's assertions are judged from the harness's own
Prometheus, the LB/Keepalived logs and each node's process followed over SSH (the sidecar sees
the LB's log as a file), the orders read back on the database host and a testinfra module run
over ssh://. A known-bad run (web-1's Nginx left dead) fails on its testinfra assertion, and
orders deleted on the database host make the writes check count them missing."""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.observe import writes
from harness.plan.model import RunPlan
from harness.remote.shell import SshShell
from harness.remote.targets import hosts_of
from harness.run import hosts_post
from harness.runtime import images, labels
from harness.runtime.docker import client
from harness.runtime.stack import Stack
from harness.spec.loader import load_topology
from tests.integration.helpers import REPO, harness, journal, leftovers, running_stack

pytestmark = pytest.mark.docker

STACK = f"""
version: 1
name: hostsrun
services:
  lb: {{kind: haproxy, replicas: 2, keepalived: {{vip: auto, advert_int: 1s}}, backends: web,
       check: {{path: /health/live, interval: 500ms, fall: 2, rise: 2, timeout: 1s}},
       retries: 1, redispatch: true}}
  web: {{kind: web, replicas: 2, app: builtin, sessions: redis, depends_on: [redis, mysql]}}
  redis: {{kind: redis}}
  mysql: {{kind: mariadb}}
load: {{locustfile: {REPO}/locustfiles/session_user.py}}
"""

SSHD = (
    'mkdir -p /root/.ssh /run/sshd && printf "%s\\n" "$AUTHORIZED_KEY" > '
    "/root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys && "
    "ssh-keygen -A >/dev/null && exec /usr/sbin/sshd -D -e -o PasswordAuthentication=no"
)
LOG = "/var/log/stack.log"  # the sidecar's view of the container's log (Docker's json file)
# the hosts' own commands: the stand-in has no systemd; /proc/1/root is the node's filesystem
LB_CONTROL = {
    "kill": "pkill -KILL -x haproxy",
    "stop": "pkill -TERM -x haproxy",
    "start": 'env HOSTNAME="$(hostname)" chroot /proc/1/root haproxy -W -D '
    "-f /etc/haproxy/haproxy.cfg >/dev/null 2>&1",
    "log": LOG,
    "keepalived_log": LOG,
    "status": "pgrep -x haproxy",
}
WEB_CONTROL = {
    "kill": "pkill -KILL -x nginx",
    "stop": "pkill -TERM -x nginx",
    "start": "chroot /proc/1/root nginx >/dev/null 2>&1",
    "status": "pgrep -x nginx && pgrep -x php-fpm8.2",
}
# The web node's checks as a user would write them for this machine (ha.yaml's checks/
# web_node.py, with the node's files under /proc/1/root as the sidecar sees them).
WEB_CHECKS = """
def test_nginx_and_php_fpm_run(host):
    assert host.process.filter(comm="nginx")
    assert len(host.process.filter(comm="php-fpm8.2")) >= 2  # a master and its pool


def test_health_answers_locally(host):
    out = host.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/health")
    assert out == "200"


def test_sessions_go_to_redis(host):
    ini = host.file("/proc/1/root/etc/php/8.2/fpm/conf.d/99-harness.ini")
    assert ini.contains("session.save_handler = redis")
"""


class Machines:
    def __init__(self, plan: RunPlan, tmp: Path) -> None:
        self.plan, self.tmp = plan, tmp
        self.ssh_config = tmp / "ssh_config"

    def url(self, instance: str) -> str:
        return f"ssh://root@{self.plan.container(instance).ip}"

    def ssh(self, instance: str, cmd: str) -> subprocess.CompletedProcess[str]:
        ip = self.plan.container(instance).ip
        return subprocess.run(
            ["ssh", "-F", str(self.ssh_config), ip, cmd], capture_output=True, text=True, timeout=30
        )

    def read_orders(self) -> str:
        pw = self.plan.secrets["db_password"]
        return f"chroot /proc/1/root mysql -h127.0.0.1 -uapp -p{pw} -N -B app -e " + (
            "'SELECT id FROM orders'"
        )

    def topology(self, name: str = "ha-hosts", **override: Any) -> Path:
        """ha.yaml on the machines; `override`: top-level keys replaced (a shorter run)."""
        (self.tmp / "web_node.py").write_text(textwrap.dedent(WEB_CHECKS))
        ka = {"vip": self.plan.vips["lb"], "advert_int": "1s"}
        spec: dict[str, Any] = {
            "version": 1,
            "name": "ha-hosts",
            "runtime": "hosts",
            "allow": [self.plan.subnet],
            "services": {
                "lb": {
                    "kind": "haproxy",
                    "hosts": [self.url("lb-1"), self.url("lb-2")],
                    "keepalived": ka,
                    "backends": "web",
                    "check": {
                        "path": "/health/live",
                        "interval": "500ms",
                        "fall": 2,
                        "rise": 2,
                        "timeout": "1s",
                    },
                    "retries": 1,
                    "redispatch": True,
                    "lab": True,
                    "control": LB_CONTROL,
                },
                "web": {
                    "kind": "web",
                    "hosts": [self.url("web-1"), self.url("web-2")],
                    "app": "builtin",
                    "sessions": "redis",
                    "lab": True,
                    "control": WEB_CONTROL,
                },
                "redis": {
                    "kind": "redis",
                    "hosts": [self.url("redis")],
                    "control": {"status": "pgrep -x redis-server"},
                },
                "mysql": {
                    "kind": "mariadb",
                    "hosts": [self.url("mysql")],
                    "control": {
                        "status": "pgrep -x mariadbd || pgrep -x mysqld",
                        "read_orders": self.read_orders(),
                    },
                },
            },
            # this kernel has no netem: the link's latency goes through the harness's Toxiproxy
            "links": [{"from": "web", "to": "mysql", "via": "toxiproxy"}],
            "load": {
                "locustfile": str(REPO / "locustfiles/session_user.py"),
                "users": 10,
                "spawn_rate": 10,
                "duration": "28s",
            },
            "chaos": [
                {"name": "kill web-1", "at": "4s", "fault": {"kill": "web-1"}},
                {
                    "name": "fail over the VIP",
                    "at": "12s",
                    "fault": {"vip_failover": {"service": "lb", "method": "kill"}},
                },
                {
                    "name": "slow database",
                    "at": "17s",
                    "for": "5s",
                    "fault": {
                        "latency": {"link": "web->mysql", "latency": "300ms", "jitter": "50ms"}
                    },
                },
            ],
            "assertions": [  # ha.yaml's, and one more
                {"session_continuity": {"max_lost": 0}},
                {"ejection_time": {"service": "web", "max": "auto"}},
                {"failover_time": {"service": "lb", "max": "6s"}},
                {
                    "name": "no errors outside the faults",
                    "during": "calm",
                    "error_budget": {"max_error_ratio": 0.005},
                },
                {
                    "name": "a killed web node costs no requests",
                    "during": "fault:kill web-1",
                    "error_budget": {"max_error_ratio": 0.01},
                },
                {
                    "name": "a VIP failover costs under 30% of its window",
                    "during": "fault:fail over the VIP",
                    "error_budget": {"max_error_ratio": 0.3},
                },
                {
                    "name": "a slow database costs no requests",
                    "during": "fault:slow database",
                    "error_budget": {"max_error_ratio": 0.01},
                },
                {  # not ha.yaml's: proves the latency was there
                    "name": "p95 during the slow database",
                    "during": "fault:slow database",
                    "latency": {"quantile": 0.95, "max": "5s"},
                },
                {"no_lost_writes": {}},
                {
                    "name": "p95 under 500ms before the faults",
                    "during": "steady",
                    "latency": {"quantile": 0.95, "max": "500ms"},
                },
                {"recovery_time": {"max": "10s"}},
                {
                    "name": "web nodes healthy after the run",
                    "testinfra": {"module": "web_node.py", "hosts": "web"},
                },
            ],
        }
        spec.update(override)
        path = self.tmp / f"{name}.yaml"
        path.write_text(json.dumps(spec))
        return path


def sidecars(plan: RunPlan, stack: Stack, pub: str) -> None:
    """An sshd in each node's network and process namespaces (the node's log mounted)."""
    tag = images.build("host", lambda m: None)
    for c in plan.containers:
        if c.instance not in stack.containers or c.kind == "prometheus":
            continue
        node = client().containers.get(labels.container_name(plan.run_id, c.instance))
        client().containers.run(
            tag,
            name=labels.container_name(plan.run_id, f"{c.instance}-sshd"),
            detach=True,
            network_mode=f"container:{node.id}",
            pid_mode=f"container:{node.id}",
            cap_add=["NET_ADMIN", "SYS_PTRACE"],
            entrypoint=["sh", "-c", SSHD],
            environment={"AUTHORIZED_KEY": pub},
            labels=labels.for_run(plan.run_id, plan.topology, "sshd", f"{c.instance}-sshd"),
            volumes={node.attrs["LogPath"]: {"bind": LOG, "mode": "ro"}},
        )


def stand_in_key(tmp: Path) -> tuple[str, str]:
    """A key generated for one test module: (its public line, for the sidecars; an ssh config
    reaching the stand-ins with it and nothing else)."""
    key = tmp / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30
    )
    config = (
        f"Host *\n  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        "  BatchMode yes\n  ConnectionAttempts 30\n"
    )
    return key.with_suffix(".pub").read_text().strip(), config


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machines]:
    tmp = tmp_path_factory.mktemp("hostsrun")
    pub, config = stand_in_key(tmp)
    with running_stack(tmp_path_factory, "hostsrun", STACK) as (plan, stack):
        sidecars(plan, stack, pub)
        m = Machines(plan, tmp)
        m.ssh_config.write_text(config)
        yield m


def test_run_on_hosts_kills_fails_over_and_judges_ha_assertions(
    machines: Machines, tmp_path: Path
) -> None:
    env = {"HARNESS_SSH_CONFIG": str(machines.ssh_config)}
    topo = machines.topology()
    proc = harness("run", str(topo), "--runs-dir", str(tmp_path), timeout=300, env=env)
    j = journal(tmp_path)
    out = proc.stdout + proc.stderr
    results = {a["name"]: a for a in j.get("assertions", [])}
    assert proc.returncode == 0, out + json.dumps(results, indent=1)[:4000]
    assert j["runtime"] == "hosts" and j["status"] == "passed"
    assert len(results) == 12 and all(a["status"] == "passed" for a in results.values())
    # ha.yaml's last three, measured over SSH: the orders read on the database host, the
    # steady instant from the LB logs, VIP loops and process checks, testinfra over ssh://
    post = next(p for p in j["phases"] if p["name"] == "post-run")
    assert post["writes_missing"] == 0 and post["writes_checked"] > 20, post
    assert results["no_lost_writes"]["measured"] == 0.0
    assert post["testinfra"] == {"web_node.py on web": {"passed": 6, "failed": 0}}, post
    # recovery_time: from the slow database's end (steady at once when nothing failed in it)
    recovery = results["recovery_time"]
    assert 0 <= recovery["measured"] <= 10, recovery
    assert not j["recovery"]["relapses"] and j["recovery"]["recovered_at"], j["recovery"]
    # each instantaneous fault's effect ended at a steady instant the watcher saw over SSH:
    # the kill once the LBs' logs marked web-1 DOWN, the failover once the VIP had moved
    spans = j["recovery"]["spans"]
    kill = next(s for s in spans if s[0] >= injected_at(j, "kill web-1"))
    down = min(e[0] for e in j["watch"]["lb_events"] if e[3] == "web-1" and e[4] == "DOWN")
    assert kill[1] is not None and down <= kill[1] < kill[0] + 10, (down, spans)
    failover = next(s for s in spans if s[0] >= injected_at(j, "fail over the VIP"))
    moved = min(t for t, h in j["watch"]["vip_holder"]["lb"] if t > failover[0] and h)
    assert failover[1] is not None and moved <= failover[1] < failover[0] + 10, (moved, spans)
    # the faults ran over SSH, were journaled with their undo commands, and were undone
    faults = {f["name"]: f for f in j["faults"]}
    assert {f["status"] for f in faults.values()} == {"rolled_back"}, faults
    vip = faults["fail over the VIP"]
    holder = vip["before"]["vip_holders"]["lb"]
    assert vip["target"] == holder and holder in ("lb-1", "lb-2")
    assert vip["detail"]["rollback"][0]["command"] == LB_CONTROL["start"]
    # the VIP really moved (watched over SSH) and Keepalived's log said so
    # (it may go back when the killed HAProxy is started again after the load: preemption)
    changes = [h for _, h in j["watch"]["vip_holder"]["lb"]]
    after = changes[changes.index(holder) :]
    assert any(h not in (holder, None) for h in after), changes
    states = [e for e in j["watch"]["lb_events"] if e[2] == "keepalived" and e[4] == "MASTER"]
    assert any(e[1] != holder for e in states), j["watch"]["lb_events"]
    ejected = [e for e in j["watch"]["lb_events"] if e[3] == "web-1" and e[4] == "DOWN"]
    assert ejected, j["watch"]["lb_events"]
    # the slow database was slow: the relayed requests' p95 in its window is above 300 ms
    assert results["p95 during the slow database"]["measured"] >= 0.25, results
    assert "Toxiproxy" in faults["slow database"].get("note", "")
    # left as found: both processes run again, no DNAT rule is left; the run's Prometheus is gone
    for web in ("web-1", "web-2"):
        assert "harness:" not in machines.ssh(web, "iptables -t nat -S OUTPUT").stdout
    assert machines.ssh("web-1", "pgrep -x nginx").returncode == 0
    assert machines.ssh(holder, "pgrep -x haproxy").returncode == 0
    assert leftovers(j["run_id"]) == []


def injected_at(j: dict[str, Any], name: str) -> float:
    return float(next(f["injected_at"] for f in j["faults"] if f["name"] == name) - 0.001)


def test_a_dead_web_node_fails_testinfra_and_deleted_orders_are_missing(
    machines: Machines, tmp_path: Path
) -> None:
    """Known bad: web-1's Nginx is left dead (HAProxy ejects it, the load goes on through
    web-2), so the testinfra assertion fails on web-1's checks only; then acknowledged orders
    deleted on the database host are counted missing by the writes check."""
    env = {"HARNESS_SSH_CONFIG": str(machines.ssh_config)}
    assert machines.ssh("web-1", "pkill -KILL -x nginx").returncode == 0
    topo = machines.topology(
        "dead-web",
        load={
            "locustfile": str(REPO / "locustfiles/session_user.py"),
            "users": 5,
            "spawn_rate": 5,
            "duration": "6s",
        },
        chaos=[],
        links=[],
        assertions=[
            {"no_lost_writes": {}},
            {
                "name": "web nodes healthy after the run",
                "testinfra": {"module": "web_node.py", "hosts": "web"},
            },
        ],
    )
    try:
        proc = harness("run", str(topo), "--runs-dir", str(tmp_path), timeout=180, env=env)
    finally:
        machines.ssh("web-1", WEB_CONTROL["start"])
    j = journal(tmp_path)
    results = {a["name"]: a for a in j.get("assertions", [])}
    assert proc.returncode == 1, proc.stdout + proc.stderr + json.dumps(results)[:3000]
    assert results["no_lost_writes"]["status"] == "passed"
    baseline = next(p for p in j["phases"] if p["name"] == "baseline")
    assert baseline["not_running"] == ["web-1"], baseline  # its status loop said so over SSH
    bad = results["web nodes healthy after the run"]
    assert (bad["kind"], bad["status"]) == ("testinfra", "failed"), bad
    post = next(p for p in j["phases"] if p["name"] == "post-run")
    assert post["testinfra"] == {"web_node.py on web": {"passed": 4, "failed": 2}}, post
    [run_dir] = [d for d in tmp_path.iterdir() if d.is_dir()]
    log = next(run_dir.glob("testinfra-*.log")).read_text()
    failed = [line for line in log.splitlines() if line.startswith("FAILED")]
    ip1 = machines.plan.container("web-1").ip
    assert len(failed) == 2 and all(f"[ssh://{ip1}]" in line for line in failed), log
    # orders deleted on the database host after the load: the same check counts them missing
    spec = load_topology(topo, require_assertions=False)
    shell = SshShell(str(machines.ssh_config))
    checked, missing, sample = hosts_post.check_writes(spec, hosts_of(spec), shell, run_dir)
    assert checked > 5 and missing == 0
    gone = sorted(writes.acked_ids(run_dir))[:3]  # acknowledged by this run's clients
    sql = "DELETE FROM orders WHERE id IN (" + ",".join(f"'{i}'" for i in gone) + ")"
    deleted = machines.ssh(
        "mysql", machines.read_orders().replace("'SELECT id FROM orders'", f'"{sql}"')
    )
    assert deleted.returncode == 0, deleted.stderr
    assert hosts_post.check_writes(spec, hosts_of(spec), shell, run_dir) == (checked, 3, gone)
    assert leftovers(j["run_id"]) == []


def test_a_log_the_hosts_cannot_read_is_refused_at_the_baseline(
    machines: Machines, tmp_path: Path
) -> None:
    """Silence is no health (review 16 #3): an LB log path that does not exist on the machines
    used to be followed forever with nothing read, so "every LB reports its backends UP" held
    vacuously. The baseline now refuses it over SSH, naming the host, the command and the field."""
    env = {"HARNESS_SSH_CONFIG": str(machines.ssh_config)}
    topo = json.loads(machines.topology().read_text())
    topo["services"]["lb"]["control"] = {**LB_CONTROL, "log": "/var/log/nope.log"}
    path = tmp_path / "nope.yaml"
    path.write_text(
        json.dumps(
            {
                **topo,
                "chaos": [],
                "links": [],
                "load": {**topo["load"], "duration": "5s"},
                "assertions": [{"error_budget": {"max_error_ratio": 0.1}}],
            }
        )
    )
    proc = harness("run", str(path), "--runs-dir", str(tmp_path / "runs"), timeout=180, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "cannot read /var/log/nope.log: `test -r /var/log/nope.log || exit 3;" in out, out
    assert "fix services.lb.control.log" in out, out
    j = journal(tmp_path / "runs")
    assert "load" not in [p["name"] for p in j["phases"]], j["phases"]
    assert leftovers(j["run_id"]) == []
