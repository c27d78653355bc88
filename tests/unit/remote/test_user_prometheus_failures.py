"""`prometheus: {url}` when the user's Prometheus fails the run: with two real Prometheus
processes (the user's, tests/promlab.py, and the run's, harness/remote/observer.start_local,
reading it through remote_read). A query answered without the user's series, a gap in its
scrapes, a failed scrape: inconclusive, never a pass. And what the run may not do with the url:
follow a redirect elsewhere, take a proxy, match its own targets, journal a password."""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

import harness
from harness.errors import InfrastructureError, SpecError
from harness.journal import PhaseRecord, new_run
from harness.observe.prom import Prometheus
from harness.plan.model import ScrapeTarget
from harness.remote import observer
from harness.remote.targets import hosts_of
from harness.report.html import render_html
from harness.run.hosts import HostsRun
from harness.spec.models import Topology
from harness.verdict.assertions import ERROR, PASSED, evaluate
from harness.verdict.windows import Timeline
from tests.promlab import BASE as T0
from tests.promlab import PromLab
from tests.unit.remote.test_user_prometheus import load, the_runs, topo_text

LB, DB = "10.0.0.11:8405", "db.example:9104"  # the user's instance labels of the two exporters
REPO = Path(__file__).resolve().parents[3]
SERVED = "  - {name: served, promql: 'sum(served) or vector(0)', below: 100}\n"


def user_series(lab: PromLab, gap: tuple[float, float] = (0, 0), failed: float = 0) -> None:
    """The user's Prometheus: `up` of both exporters and `served` (5) every second from T0-60 to
    T0+40, none while it was down (`gap`), up=0 for LB's scrape at `failed`."""
    times = [t for t in lab.scrape_times(T0 - 60, T0 + 40) if not gap[0] <= t < gap[1]]
    lab.gauge("up", {"job": "mysql", "instance": DB}, [(t, 1.0) for t in times])
    lab.gauge("up", {"job": "haproxy", "instance": LB}, [(t, float(t != failed)) for t in times])
    lab.gauge("served", {"job": "haproxy", "instance": LB}, [(t, 5.0) for t in times])
    lab.start()


def served(tmp_path: Path, lab: PromLab, tl: Timeline) -> tuple[str, str]:
    """The verdict of `sum(served) or vector(0) < 100` in `tl`'s run window: status, message."""
    topo = load(tmp_path, topo_text(lab.url or "") + SERVED)
    with the_runs(tmp_path, topo) as prom:
        r = evaluate(topo.assertions[1], prom, "r1", tl, topo)
        if r.status == PASSED:  # the same verdict with the user's Prometheus gone
            lab.stop()
            r = evaluate(topo.assertions[1], prom, "r1", tl, topo)
        return r.status, r.message


def test_a_query_the_users_prometheus_did_not_answer_is_inconclusive(
    tmp_path: Path, promlab: PromLab
) -> None:
    user_series(promlab)
    status, why = served(tmp_path, promlab, Timeline(T0, T0 + 30))
    # it passed with the user's series; once the user's Prometheus is gone, the run's answers
    # `success` and `[]` with a remote_read warning, and `or vector(0)` would read 0: a pass
    assert status == ERROR and "remote_read" in why, why
    assert why.startswith("Prometheus answered ")


def test_the_prometheus_client_raises_on_a_remote_read_warning(
    tmp_path: Path, promlab: PromLab
) -> None:
    user_series(promlab)
    topo = load(tmp_path, topo_text(promlab.url or ""))
    with the_runs(tmp_path, topo) as prom:
        assert prom.query(f'served{{instance="{LB}"}} @ {T0:.3f}')
        promlab.stop()
        raw = httpx.get(f"{prom.url}/api/v1/query", params={"query": "served"}).json()
        assert raw["status"] == "success" and raw["data"]["result"] == []  # Prometheus's shape
        assert raw["warnings"][0].startswith("remote_read: "), raw
        with pytest.raises(InfrastructureError, match="remote_read: "):
            prom.query("sum(served) or vector(0)")
        # the baseline reads it as not ready (a reason, not an exception)
        assert observer.not_ready(prom, topo, hosts_of(topo)).startswith("the user's Prometheus")


@pytest.mark.parametrize(
    ("gap", "failed", "needle"),
    [
        ((T0 + 10, T0 + 16), 0, f"scrapes of {LB}: none between {T0 + 9:.3f} and {T0 + 16:.3f}"),
        ((0, 0), T0 + 12, f"scrapes of {LB}: one failed at {T0 + 12:.3f} (up=0)"),
        ((T0 - 60, T0 + 5), 0, "none in the 2.5s before the window's start"),
        ((T0 + 25, T0 + 41), 0, f"none since {T0 + 24:.3f}, before the window's end"),
    ],
)
def test_a_gap_in_the_users_scrapes_makes_its_promql_inconclusive(
    tmp_path: Path, promlab: PromLab, gap: tuple[float, float], failed: float, needle: str
) -> None:
    user_series(promlab, gap, failed)
    status, why = served(tmp_path, promlab, Timeline(T0, T0 + 30))
    assert status == ERROR and why.startswith("inconclusive: the user's Prometheus's"), why
    assert needle in why, why


def test_a_window_the_user_scraped_throughout_is_judged(tmp_path: Path, promlab: PromLab) -> None:
    user_series(promlab, (T0 + 10, T0 + 16))  # the gap lies before this window
    topo = load(tmp_path, topo_text(promlab.url or "") + SERVED)
    with the_runs(tmp_path, topo) as prom:
        r = evaluate(topo.assertions[1], prom, "r1", Timeline(T0 + 20, T0 + 30), topo)
    assert r.status == PASSED and r.measured == 5.0, r


def test_harness_Run_on_a_hosts_file_is_a_hosts_run(tmp_path: Path) -> None:
    """The README's `from harness import Run`: a docker copy of the hosts' topology, judged
    instead of the machines, would be a pass about something else."""
    path = tmp_path / "h.yaml"
    path.write_text(topo_text("http://no-such.invalid:9090"))
    with pytest.raises(SpecError, match=r"prometheus.url: no-such.invalid does not resolve"):
        harness.Run(path, runs_dir=tmp_path / "runs", say=lambda m: None)
    assert not (tmp_path / "runs").exists()  # refused by the hosts run's validation, at once
    path.write_text(topo_text("http://localhost:9090"))
    run = harness.Run(path, runs_dir=tmp_path / "runs", say=lambda m: None, i_know=True)
    assert isinstance(run, HostsRun) and run.i_know and "db" in run.hosts
    docker = harness.Run(REPO / "topologies/ha.yaml", runs_dir=tmp_path / "runs", judged=False)
    assert not isinstance(docker, HostsRun) and isinstance(docker, harness.Run)


class Redirect(http.server.BaseHTTPRequestHandler):
    to = ""
    hits: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        if self.to:
            self.send_response(307)
            self.send_header("Location", self.to)
        else:
            self.hits.append(self.path)
            self.send_response(500)
        self.end_headers()

    do_GET = do_POST  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def redirect() -> Iterator[tuple[str, list[str]]]:
    """A user's url (127.0.0.1) answering 307 to another address (127.0.0.2): (url, hits there)."""
    hits: list[str] = []
    there = type("There", (Redirect,), {"hits": hits})
    b = http.server.HTTPServer(("127.0.0.2", 0), there)
    to = f"http://127.0.0.2:{b.server_port}/api/v1/read"
    a = http.server.HTTPServer(("127.0.0.1", 0), type("Here", (Redirect,), {"to": to}))
    for s in (a, b):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{a.server_port}", hits
    finally:
        for s in (a, b):
            s.shutdown()
            s.server_close()


def test_the_runs_prometheus_follows_no_redirect_from_the_users_url(
    tmp_path: Path, redirect: tuple[str, list[str]]
) -> None:
    url, hits = redirect
    topo = load(tmp_path, topo_text(url))
    with the_runs(tmp_path, topo) as prom, pytest.raises(InfrastructureError, match="remote_"):
        prom.query("some_series")
    assert hits == []  # the old config (follow_redirects defaults to true) POSTed there
    cfg = tmp_path / "prometheus.yml"
    assert "follow_redirects: false" in cfg.read_text()
    check = subprocess.run(["promtool", "check", "config", str(cfg)], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_readiness_probe_takes_no_proxy_and_no_redirect(
    tmp_path: Path, redirect: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, hits = redirect
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.3:9")  # nothing listens: a proxy fails
    monkeypatch.setenv("NO_PROXY", "")
    topo = load(tmp_path, topo_text(url))
    why = observer.not_ready(Prometheus("http://127.0.0.1:9"), topo, hosts_of(topo))
    assert why == f"the user's Prometheus at {url} is not ready: 307", why
    assert hits == []


def test_the_runs_prometheus_is_asked_without_a_proxy(
    promlab: PromLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    promlab.start()
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.3:9")  # nothing listens: a proxy fails
    monkeypatch.setenv("NO_PROXY", "")
    assert Prometheus(promlab.url or "").scalar("vector(1)") == 1


def test_credentials_are_sent_but_never_journaled(tmp_path: Path) -> None:
    topo = load(tmp_path, topo_text("http://ops:s%40cret@10.0.0.5:9090/"))
    assert observer.user_url(topo) == "http://10.0.0.5:9090"  # journaled as prometheus_reads
    cfg = observer.config("r1", topo, [])
    assert "url: http://10.0.0.5:9090/api/v1/read" in cfg and "ops:" not in cfg
    assert "username: ops" in cfg and "password: s@cret" in cfg  # basic auth, as Prometheus sends
    (tmp_path / "p.yml").write_text(cfg)
    check = subprocess.run(["promtool", "check", "config", str(tmp_path / "p.yml")])
    assert check.returncode == 0
    record = new_run("r1", "hosts", "h.yaml")  # a journal written before: no password shown
    up = {"name": "up", "started_at": 1.0, "ended_at": 2.0, "status": "completed"}
    up["prometheus_reads"] = "http://ops:s%40cret@10.0.0.5:9090"
    record["phases"].append(cast(PhaseRecord, up))
    html = render_html(record)
    assert "reading http://10.0.0.5:9090</dd>" in html and "cret" not in html


def test_every_address_of_the_name_is_checked_against_allow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prometheus and httpx resolve the name again and may take any of its addresses."""
    answers = {
        "two.example": ["10.0.0.5", "192.168.1.5"],
        "six.example": ["10.0.0.5", "2001:db8::5"],
    }
    real = socket.getaddrinfo

    def getaddrinfo(name: str, *args: Any) -> Any:
        if name not in answers:
            return real(name, *args)
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, 1, 6, "", (a, 0))
            for a in answers[name]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name, bad in (("two.example", "192.168.1.5"), ("six.example", "2001:db8::5")):
        topo = load(tmp_path, topo_text(f"http://{name}:9090"))
        with pytest.raises(SpecError, match=rf"prometheus.url: {name} \({bad}\) is outside allow"):
            observer.refuse_outside(topo, "h.yaml")
    # localhost: 127.0.0.1 and ::1, both this machine's
    observer.refuse_outside(load(tmp_path, topo_text("http://localhost:9090")), "h.yaml")


def test_an_instance_mapped_to_the_runs_own_target_matches_nothing(
    tmp_path: Path, promlab: PromLab
) -> None:
    """`prometheus.instances: {db: harness}`: `up{instance="harness"}` is the run's own scrape
    (labelled run=r1), up; the baseline must still find no scrape of the database by the user."""
    now = time.time()
    promlab.gauge("up", {"job": "haproxy", "instance": LB}, [(now - i, 1.0) for i in range(20)])
    promlab.start()
    text = topo_text(promlab.url or "").replace("'db.example:9104'", "harness")
    topo: Topology = load(tmp_path, text)
    own = ScrapeTarget("harness", (promlab.url or "").removeprefix("http://"), "harness")
    with the_runs(tmp_path, topo, [own]) as prom:
        assert prom.wait_for('up{instance="harness"}', 20) == 1  # the run's own target
        why = observer.not_ready(prom, topo, hosts_of(topo))
    assert why.startswith('db\'s exporter: max(up{instance="harness",run=""}) is absent'), why
