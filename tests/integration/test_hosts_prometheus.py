"""`harness run` on `runtime: hosts` with `prometheus: {url}`: the user's own Prometheus scrapes
the machines' exporters, the run's Prometheus scrapes only the harness's (Locust, its watchers)
and reads the user's series through remote_read, so an assertion over the user's labels is
answered by the run's Prometheus.

Stand-ins (test_hosts_run.py's, smaller): one HAProxy, one web node and MariaDB on docker, each
with an sshd sidecar, plus "the user's Prometheus": the harness's Prometheus image with a
config as a user would write it (jobs of their own, `instance` the address it scrapes or a
name of theirs, no `run` label), on the stack's network."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.plan.model import RunPlan
from harness.remote.observer import host_exporters
from harness.remote.targets import Host
from harness.runtime import images, labels
from harness.runtime.docker import client
from harness.runtime.stack import Stack
from tests.integration.helpers import REPO, harness, journal, leftovers, running_stack
from tests.integration.test_hosts_run import LB_CONTROL, WEB_CONTROL, sidecars, stand_in_key

pytestmark = pytest.mark.docker

STACK = """
version: 1
name: hostsprom
services:
  lb: {kind: haproxy, backends: web}
  web: {kind: web, app: builtin, sessions: files, depends_on: [mysql]}
  mysql: {kind: mariadb}
"""
CONTROL = {  # the stand-ins have no systemd: the hosts' own commands
    "lb": {**LB_CONTROL, "status": "pgrep -x haproxy"},
    "web": {**WEB_CONTROL, "status": "pgrep -x nginx"},
    "mysql": {"status": "pgrep -x mariadbd || pgrep -x mysqld"},
}
KINDS = {"lb": "haproxy", "web": "web", "mysql": "mariadb"}
DB_NAME = "mysql.example:9104"


def user_prometheus(
    plan: RunPlan, stack: Stack, exporters: list[str], relabel: dict[str, dict[str, str]]
) -> str:
    """The user's Prometheus on the stack's network, scraping `exporters` (ADDR:PORT) every
    second under its own job names (`relabel`: an exporter's own labels); its URL."""
    cfg = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": f"user-{i}",
                "static_configs": [{"targets": [a], "labels": relabel.get(a, {})}],
            }
            for i, a in enumerate(exporters)
        ],
    }
    data = yaml.safe_dump(cfg).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("prometheus.yml")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    c = client().containers.create(
        images.build("prometheus", lambda m: None),
        name=labels.container_name(plan.run_id, "users-prometheus"),
        network=stack.network.name,
        command=[
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--web.listen-address=0.0.0.0:9090",
        ],
        labels=labels.for_run(plan.run_id, plan.topology, "users-prometheus", "users-prometheus"),
    )
    c.put_archive("/etc/prometheus", buf.getvalue())
    c.start()
    c.reload()
    return f"http://{c.attrs['NetworkSettings']['Networks'][stack.network.name]['IPAddress']}:9090"


class Machines:
    def __init__(self, plan: RunPlan, stack: Stack, tmp: Path) -> None:
        self.plan, self.tmp = plan, tmp
        self.ssh_config = tmp / "ssh_config"
        self.hosts = {
            s: Host(s, s, KINDS[s], self.url(s), plan.container(s).ip, True) for s in KINDS
        }
        self.exporters = [t.address for t in host_exporters(self.hosts)]
        # the user names the database's target: the topology maps it (prometheus.instances)
        named = {self.exporters[-1]: {"instance": DB_NAME}}
        self.prometheus = user_prometheus(plan, stack, self.exporters, named)

    def url(self, instance: str) -> str:
        return f"ssh://root@{self.plan.container(instance).ip}"

    def topology(self) -> Path:
        lb = self.exporters[0]  # the HAProxy's, as the user's Prometheus names it
        served = (
            f'sum(increase(haproxy_backend_http_responses_total{{instance="{lb}",proxy="app",'
            'code="2xx"}[10s]))'
        )
        spec: dict[str, Any] = {
            "version": 1,
            "name": "hostsprom",
            "runtime": "hosts",
            "allow": [self.plan.subnet],
            "prometheus": {"url": self.prometheus, "instances": {"mysql": DB_NAME}},
            "services": {
                s: {"kind": KINDS[s], "hosts": [self.url(s)], "control": CONTROL[s]}
                | ({"backends": "web"} if s == "lb" else {})
                | ({"app": "builtin", "sessions": "files"} if s == "web" else {})
                for s in KINDS
            },
            "load": {
                "locustfile": str(REPO / "locustfiles/session_user.py"),
                "users": 5,
                "spawn_rate": 5,
                "duration": "8s",
            },
            "assertions": [
                {"error_budget": {"max_error_ratio": 0.01}},
                {  # the user's series, under the user's labels: only remote_read brings it
                    "name": "the LB served the load, says the user's Prometheus",
                    "promql": served,
                    "above": 100,
                },
            ],
        }
        path = self.tmp / "hostsprom.yaml"
        path.write_text(json.dumps(spec))
        return path


@pytest.fixture(scope="module")
def machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machines]:
    tmp = tmp_path_factory.mktemp("hostsprom")
    pub, config = stand_in_key(tmp)
    with running_stack(tmp_path_factory, "hostsprom", STACK) as (plan, stack):
        sidecars(plan, stack, pub)
        m = Machines(plan, stack, tmp)
        m.ssh_config.write_text(config)
        yield m


def test_a_hosts_run_judges_from_the_users_prometheus(machines: Machines, tmp_path: Path) -> None:
    env = {"HARNESS_SSH_CONFIG": str(machines.ssh_config)}
    proc = harness(
        "run", str(machines.topology()), "--runs-dir", str(tmp_path), timeout=240, env=env
    )
    j = journal(tmp_path)
    results = {a["name"]: a for a in j.get("assertions", [])}
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out + json.dumps(results, indent=1)[:4000]
    assert j["status"] == "passed" and len(results) == 2, results
    served = results["the LB served the load, says the user's Prometheus"]
    assert served["status"] == "passed" and served["measured"] > 100, served
    # ... and it is the harness's load: the LB's 2xx, the clients' requests (+ baseline probes)
    assert 0.95 <= served["measured"] / j["summary"]["requests"] <= 1.2, (served, j["summary"])
    # the run's Prometheus scraped none of the hosts and read the user's, as journaled
    up = next(p for p in j["phases"] if p["name"] == "up")
    assert up["scraped"] == [] and up["prometheus_reads"] == machines.prometheus, up
    assert up["prometheus"].startswith("http://127.0.0.1:")
    assert leftovers(j["run_id"]) == []


def test_the_users_prometheus_gone_mid_run_is_inconclusive_not_a_pass(
    machines: Machines, tmp_path: Path
) -> None:
    """README: a `promql:` over the user's series is judged only if the user's Prometheus
    scraped every host exporter throughout its window. Paused for 4 s mid-load, it comes back
    with a gap: its `served` figure (the samples it has still sum above 100) is inconclusive,
    the harness's own error budget stands, exit 2."""
    users = client().containers.get(labels.container_name(machines.plan.run_id, "users-prometheus"))
    paused: list[float] = []

    def pause_mid_load() -> None:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline and not paused:
            try:
                phases = journal(tmp_path).get("phases", [])
            except (ValueError, OSError):  # no run directory yet, or the journal mid-write
                phases = []
            if any(p.get("name") == "load" for p in phases):
                time.sleep(1.0)
                users.pause()
                paused.append(time.time())
                time.sleep(4.0)
                users.unpause()
            time.sleep(0.2)

    pauser = threading.Thread(target=pause_mid_load, daemon=True)
    pauser.start()
    env = {"HARNESS_SSH_CONFIG": str(machines.ssh_config)}
    proc = harness(
        "run", str(machines.topology()), "--runs-dir", str(tmp_path), timeout=240, env=env
    )
    pauser.join(10)
    if users.status == "paused":  # pragma: no cover - the run outlived the thread's wait
        users.unpause()
    j = journal(tmp_path)
    results = {a["name"]: a for a in j.get("assertions", [])}
    out = proc.stdout + proc.stderr
    assert paused, out
    assert proc.returncode == 2, out + json.dumps(results, indent=1)[:4000]
    served = results["the LB served the load, says the user's Prometheus"]
    assert served["status"] == "error", served
    assert served["message"].startswith("inconclusive: the user's Prometheus's scrapes of"), served
    assert "none between" in served["message"], served
    budget = next(a for name, a in results.items() if name != served["name"])
    assert budget["status"] == "passed", budget  # the harness's own figure stands
    assert leftovers(j["run_id"]) == []
