"""`prometheus: {url}` on runtime: hosts, with two real Prometheus processes: a "user's" one
(tests/promlab.py: series only it holds, labelled as the user's Prometheus labels them) and the
run's own (harness/remote/observer.start_local), which scrapes none of the hosts' exporters and
reads the user's series through remote_read. Also what validation refuses: a url outside
`allow:` and an assertion that needs the harness's labels on the hosts' series."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from harness.errors import SpecError
from harness.journal import PhaseRecord, new_run
from harness.observe.prom import Prometheus
from harness.plan.model import ScrapeTarget
from harness.remote import observer
from harness.remote.targets import Host, hosts_of
from harness.report.html import render_html
from harness.run.hosts import HostsRun
from harness.spec import hostsrt
from harness.spec.loader import load_topology
from harness.spec.models import Topology
from harness.verdict import data
from tests.promlab import PromLab

TOPO = """\
version: 1
name: hosts
runtime: hosts
allow: [10.0.0.0/24]
prometheus: {{url: '{url}', instances: {{db: 'db.example:9104'}}}}
services:
  lb: {{kind: haproxy, backends: web, hosts: [{lbs}]}}
  web: {{kind: web, sessions: files, hosts: [ssh://ops@10.0.0.21]}}
  db: {{kind: mariadb, hosts: [ssh://ops@10.0.0.31]}}
load: {{duration: 10s}}
assertions:
  - {{name: budget, during: run, error_budget: {{max_error_ratio: 0.1}}}}
"""
LB1 = "ssh://ops@10.0.0.11"
DB_EXPORTER = observer.host_exporters(
    {"db": Host("db", "db", "mariadb", "ssh://ops@10.0.0.31", "10.0.0.31", False)}
)[0]


def topo_text(url: str, lbs: str = LB1) -> str:
    return TOPO.format(url=url, lbs=lbs)


def load(tmp_path: Path, text: str) -> Topology:
    p = tmp_path / "h.yaml"
    p.write_text(text)
    return load_topology(p, require_assertions=False)


@pytest.fixture
def user_prom(promlab: PromLab) -> PromLab:
    """The user's Prometheus: it scraped lb-1's HAProxy exporter at 10.0.0.11:8405 and the
    database's by a name for the last 20 s (its own labels: no run=, instance is the address
    it scrapes)."""
    now = time.time()
    times = [now - 20 + i for i in range(20)]
    target = {"job": "haproxy", "instance": "10.0.0.11:8405"}
    promlab.gauge("up", target, [(t, 1.0) for t in times])
    db = "db.example:9104"  # the name it scrapes the database by: prometheus.instances maps it
    promlab.gauge("up", {"job": "mysql", "instance": db}, [(t, 1.0) for t in times])
    promlab.gauge(
        "haproxy_backend_active_servers", {**target, "proxy": "app"}, [(t, 2.0) for t in times]
    )
    promlab.start()
    return promlab


@contextlib.contextmanager
def the_runs(
    tmp_path: Path, topo: Topology, targets: list[ScrapeTarget] | None = None
) -> Iterator[Prometheus]:
    """The run's Prometheus for `topo`, as a hosts run starts it (scraping `targets`)."""
    url, proc = observer.start_local(tmp_path, "r1", topo, targets or [])
    try:
        prom = Prometheus(url)
        assert prom.wait_for("vector(1)", 20) == 1, (tmp_path / "prometheus.log").read_text()
        yield prom
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def runs_prom(tmp_path: Path, user_prom: PromLab) -> Iterator[tuple[Prometheus, Topology]]:
    """The run's Prometheus, as a hosts run with prometheus: {url} starts it."""
    assert user_prom.url
    topo = load(tmp_path, topo_text(user_prom.url))
    targets = observer.scraped(topo, hosts_of(topo))
    assert targets == []  # the hosts' exporters are the user's Prometheus's to scrape
    with the_runs(tmp_path, topo, targets) as prom:
        yield prom, topo


def test_the_runs_prometheus_answers_with_series_only_the_users_scraped(
    runs_prom: tuple[Prometheus, Topology], user_prom: PromLab, tmp_path: Path
) -> None:
    prom, topo = runs_prom
    sel = '{instance="10.0.0.11:8405",proxy="app"}'
    assert prom.scalar(f"haproxy_backend_active_servers{sel}") == 2.0
    # ... which the run's Prometheus did not scrape: it has no target of the hosts
    assert "10.0.0.11:8405" not in prom.targets_up()
    assert observer.not_ready(prom, topo, hosts_of(topo)) == ""
    # lb-2's exporter is not among the user's series: the baseline says so
    two = load(tmp_path, topo_text(user_prom.url or "", f"{LB1}, ssh://ops@10.0.0.12"))
    why = observer.not_ready(prom, two, hosts_of(two))
    assert why.startswith(
        'lb-2\'s exporter: max(up{instance="10.0.0.12:8405",run=""}) is absent'
    ), why
    user_prom.stop()  # the user's Prometheus gone: the run cannot judge
    why = observer.not_ready(prom, topo, hosts_of(topo))
    assert why.startswith(f"the user's Prometheus at {user_prom.url} does not answer"), why


def test_the_runs_config_reads_the_users_prometheus_and_scrapes_no_host(tmp_path: Path) -> None:
    topo = load(tmp_path, topo_text("http://10.0.0.5:9090/"))
    cfg = observer.config("r1", topo, [])
    assert "url: http://10.0.0.5:9090/api/v1/read" in cfg and "read_recent: true" in cfg
    without = load(tmp_path, topo_text("http://10.0.0.5:9090").replace("prometheus:", "#"))
    assert "remote_read" not in observer.config("r1", without, [])
    scraped = [t.address for t in observer.scraped(without, hosts_of(without))]
    assert scraped == ["10.0.0.11:8405", DB_EXPORTER.address]


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://192.168.9.9:9090", "h.yaml:5: prometheus.url: 192.168.9.9 is outside allow"),
        ("https://8.8.8.8", "prometheus.url: 8.8.8.8 is outside allow: [10.0.0.0/24]"),
    ],
)
def test_a_url_outside_allow_is_refused_on_one_line(tmp_path: Path, url: str, needle: str) -> None:
    with pytest.raises(SpecError) as e:
        load(tmp_path, topo_text(url))
    [line] = e.value.problems
    assert needle in line and "add its range to allow:" in line, line


def test_names_are_resolved_and_loopback_is_this_machine(tmp_path: Path) -> None:
    for url in ("http://127.0.0.1:9090", "http://localhost:9090", "http://10.0.0.5:9090"):
        observer.refuse_outside(load(tmp_path, topo_text(url)), "h.yaml")
    with pytest.raises(SpecError, match=r"prometheus.url: no-such.invalid does not resolve"):
        observer.refuse_outside(load(tmp_path, topo_text("http://no-such.invalid:9090")), "h.yaml")


def test_an_assertion_on_the_hosts_series_under_the_runs_labels_is_refused(
    tmp_path: Path,
) -> None:
    assert hostsrt.HOST_SERIES == data.KINDS  # the verdict's assertions reading host exporters
    text = topo_text("http://10.0.0.5:9090") + "  - {replication_lag: {max: 1s, service: db}}\n"
    text = text.replace(
        "hosts: [ssh://ops@10.0.0.31]", "hosts: [ssh://ops@10.0.0.31, ssh://ops@10.0.0.32]"
    )
    with pytest.raises(SpecError) as e:
        load(tmp_path, text)
    line = next(p for p in e.value.problems if "replication_lag" in p)
    assert "h.yaml:13: assertions[1].replication_lag: replication_lag reads the hosts'" in line, (
        e.value.problems
    )
    assert "write it as a promql: assertion" in line


def test_the_report_says_which_prometheus_answered() -> None:
    record = new_run("r1", "hosts", "h.yaml")
    record["phases"].append(
        cast(
            PhaseRecord,
            {
                "name": "up",
                "started_at": 1.0,
                "ended_at": 2.0,
                "status": "completed",
                "prometheus": "http://127.0.0.1:41000",
                "prometheus_reads": "http://10.0.0.5:9090",
            },
        )
    )
    assert "<dt>Prometheus</dt><dd>the run&#x27;s, reading http://10.0.0.5:9090</dd>" in (
        render_html(record)
    )
    cast(dict[str, Any], record["phases"][0]).pop("prometheus_reads")
    assert "<dt>Prometheus</dt>" not in render_html(record)


def test_instances_map_only_hosts_with_an_exporter(tmp_path: Path) -> None:
    text = topo_text("http://10.0.0.5:9090")
    with pytest.raises(SpecError) as e:
        load(tmp_path, text.replace("{db: 'db.example:9104'}", "{db-2: 'x:1'}"))
    [line] = e.value.problems
    assert "h.yaml:5: prometheus.instances.db-2: unknown host instance 'db-2' (one of" in line
    with pytest.raises(SpecError) as e:
        load(tmp_path, text.replace("db.example:9104", 'db"x'))
    assert """prometheus.instances.db: 'db"x' is not an instance label""" in e.value.problems[0]
    web = load(tmp_path, text.replace("{db: 'db.example:9104'}", "{web: 'web.example:80'}"))
    with pytest.raises(SpecError, match="prometheus.instances.web: web's kind has no exporter"):
        observer.refuse_outside(web, "h.yaml")


def test_a_hosts_run_refuses_a_url_resolving_outside_allow_before_starting(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.yaml"
    path.write_text(topo_text("http://no-such.invalid:9090"))
    with pytest.raises(SpecError) as e:
        HostsRun(path, runs_dir=tmp_path / "runs", say=lambda m: None)
    [line] = e.value.problems
    assert line.startswith(f"{path}: prometheus.url: no-such.invalid does not resolve"), line
    assert not (tmp_path / "runs").exists()  # refused before a run directory exists
    path.write_text(topo_text("http://localhost:9090"))  # this machine's own: allowed
    assert HostsRun(path, runs_dir=tmp_path / "runs", say=lambda m: None).hosts
