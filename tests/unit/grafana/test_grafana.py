"""Grafana push/annotations against a fake Grafana on 127.0.0.1 (tests/fakes.py: it checks
request shapes against Grafana's documented HTTP API), and dashboard drift."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness.grafana import (
    GrafanaAnnotator,
    annotate,
    health,
    push_dashboard,
    update_annotation_end,
)
from tests.fakes import GRAFANA_TOKEN as TOKEN
from tests.fakes import FakeGrafana

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "dashboards" / "harness-overview.json"
BUILD = ROOT / "dashboards" / "build.py"


@pytest.fixture()
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana().start()
    yield fake
    fake.stop()
    assert not fake.problems, fake.problems


@pytest.fixture()
def dead_url() -> str:
    """A local port with nothing listening (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _auth_ok(req: dict[str, Any]) -> bool:
    return req["headers"].get("Authorization") == f"Bearer {TOKEN}"


# --------------------------------------------------------------------------- functions


def test_health(grafana: FakeGrafana) -> None:
    assert health(grafana.url, TOKEN)["database"] == "ok"
    assert grafana.requests[0]["path"] == "/api/health"
    assert _auth_ok(grafana.requests[0])


def test_push_dashboard_sends_committed_json(grafana: FakeGrafana) -> None:
    committed = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    reply = push_dashboard(grafana.url, TOKEN, committed, folder_uid="harness")
    assert reply["status"] == "success" and reply["uid"] == "harness-overview"
    (req,) = grafana.requests
    assert req["method"] == "POST" and req["path"] == "/api/dashboards/db"
    assert _auth_ok(req)
    body = req["body"]
    assert body["overwrite"] is True
    assert body["folderUid"] == "harness"
    expected = dict(committed, id=None)
    assert body["dashboard"] == expected
    # the caller's dict is not modified
    assert committed == json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_push_dashboard_accepts_path_and_wrapper(grafana: FakeGrafana) -> None:
    push_dashboard(grafana.url, TOKEN, DASHBOARD)
    wrapped = {"dashboard": json.loads(DASHBOARD.read_text()), "meta": {"folderUid": "x"}}
    reply = push_dashboard(grafana.url, TOKEN, wrapped, message="harness 0.1.0")
    assert reply["version"] == 2
    first, second = (r["body"] for r in grafana.requests)
    assert "folderUid" not in first
    assert first["dashboard"] == second["dashboard"]
    assert second["message"] == "harness 0.1.0"


def test_push_dashboard_with_url_path_prefix(grafana: FakeGrafana) -> None:
    # a Grafana served under a sub-path; the fake only knows /api/..., so expect a 404
    # at the prefixed path (proves the prefix is kept and followed by "/api")
    with pytest.raises(Exception, match="404|Not found"):
        push_dashboard(grafana.url + "/grafana", TOKEN, DASHBOARD)
    assert grafana.requests[-1]["path"] == "/grafana/api/dashboards/db"


def test_annotate_and_update_end(grafana: FakeGrafana) -> None:
    ann_id = annotate(grafana.url, TOKEN, "kill web-1", ["harness", "run:r1"], 1790000020050.4)
    assert isinstance(ann_id, int)
    update_annotation_end(grafana.url, TOKEN, ann_id, 1790000035110)
    post, patch = grafana.requests
    assert post["method"] == "POST" and post["path"] == "/api/annotations"
    assert post["body"] == {
        "time": 1790000020050,
        "tags": ["harness", "run:r1"],
        "text": "kill web-1",
    }
    assert patch["method"] == "PATCH" and patch["path"] == f"/api/annotations/{ann_id}"
    assert patch["body"] == {"timeEnd": 1790000035110}
    assert all(_auth_ok(r) for r in grafana.requests)
    stored = grafana.annotations[ann_id]
    assert stored["tags"] == ["harness", "run:r1"]  # PATCH did not wipe them


def test_annotate_region_on_dashboard(grafana: FakeGrafana) -> None:
    annotate(grafana.url, TOKEN, "t", ["harness"], 1790000000000, 1790000005000, "harness-overview")
    body = grafana.requests[0]["body"]
    assert body["timeEnd"] == 1790000005000
    assert body["dashboardUID"] == "harness-overview"


def test_wrong_token_raises_from_plain_functions(grafana: FakeGrafana) -> None:
    with pytest.raises(Exception, match="Unauthorized"):
        annotate(grafana.url, "wrong", "t", [], 1790000000000)


# --------------------------------------------------------------------------- annotator


def test_annotator_posts_start_and_end(grafana: FakeGrafana) -> None:
    ann = GrafanaAnnotator(grafana.url, TOKEN, run_id="20261122-101500-ab12")
    ann.fault_started("kill web-1", "web-1", kind="kill", at=1790000020.05)
    ann.fault_ended("kill web-1", at=1790000035.11)
    ann.event("VIP lb-1 -> lb-2", tags=["failover"], at=1790000046.8)
    assert ann.close(timeout=10)
    assert ann.stats() == {"sent": 3, "failures": 0, "dropped": 0, "disabled": False}
    start, end, event = grafana.requests
    assert start["method"] == "POST" and start["path"] == "/api/annotations"
    assert start["body"]["time"] == 1790000020050
    assert start["body"]["tags"] == [
        "harness",
        "run:20261122-101500-ab12",
        "fault:kill web-1",
        "target:web-1",
        "kind:kill",
    ]
    assert "kill web-1" in start["body"]["text"] and "web-1" in start["body"]["text"]
    assert "timeEnd" not in start["body"]
    ann_id = next(iter(grafana.annotations))
    assert end["method"] == "PATCH" and end["path"] == f"/api/annotations/{ann_id}"
    assert end["body"] == {"timeEnd": 1790000035110}
    assert event["body"]["tags"] == ["harness", "run:20261122-101500-ab12", "failover"]
    assert all(_auth_ok(r) for r in grafana.requests)


def test_annotator_does_not_block_the_caller(grafana: FakeGrafana) -> None:
    grafana.delay = 0.5
    ann = GrafanaAnnotator(grafana.url, TOKEN, run_id="r")
    t = time.monotonic()
    ann.fault_started("stop web-1", "web-1")
    ann.fault_ended("stop web-1")
    assert time.monotonic() - t < 0.2
    assert ann.flush(timeout=10)
    assert ann.sent == 2
    ann.close()


def test_annotator_end_without_start_posts_point(grafana: FakeGrafana) -> None:
    ann = GrafanaAnnotator(grafana.url, TOKEN, run_id="r", background=False)
    ann.fault_ended("never started", at=1790000001.0)
    (req,) = grafana.requests
    assert req["method"] == "POST"
    assert req["body"]["tags"] == ["harness", "run:r", "fault:never started"]


def test_dead_grafana_never_raises(dead_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="harness.grafana")
    ann = GrafanaAnnotator(dead_url, TOKEN, run_id="r", timeout=1.0, max_consecutive_failures=2)
    for i in range(4):
        ann.fault_started(f"f{i}", "web-1")
        ann.fault_ended(f"f{i}")
    assert ann.close(timeout=20)
    assert ann.failures == 2 and ann.sent == 0
    assert ann.dropped == 6
    assert ann.disabled
    assert any("failed" in r.getMessage() for r in caplog.records)
    assert any("no more annotations" in r.getMessage() for r in caplog.records)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    # after close: still no exception
    ann.event("late")
    assert ann.dropped == 7


def test_dead_grafana_inline_mode(dead_url: str) -> None:
    ann = GrafanaAnnotator(dead_url, TOKEN, background=False, timeout=1.0)
    ann.fault_started("x", "y")
    ann.fault_ended("x")
    assert ann.failures == 2


def test_http_errors_are_counted_not_raised(grafana: FakeGrafana) -> None:
    ann = GrafanaAnnotator(grafana.url, "wrong-token", background=False)
    ann.event("x", at=1790000000.0)
    assert ann.failures == 1 and ann.sent == 0
    assert TOKEN not in repr(ann) and "wrong-token" not in repr(ann)


def test_from_env() -> None:
    assert GrafanaAnnotator.from_env(environ={}) is None
    assert GrafanaAnnotator.from_env(environ={"GRAFANA_URL": "  "}) is None
    assert GrafanaAnnotator.from_env(environ={"GRAFANA_URL": "not a url"}) is None
    ann = GrafanaAnnotator.from_env(
        "r9", environ={"GRAFANA_URL": "http://127.0.0.1:3000", "GRAFANA_TOKEN": "t"}
    )
    assert ann is not None and ann.run_id == "r9" and ann.url == "http://127.0.0.1:3000"
    assert GrafanaAnnotator.from_env(environ={"GRAFANA_URL": "http://127.0.0.1:3000"}) is not None


# --------------------------------------------------------------------------- dashboard as code


def _load_build() -> ModuleType:
    try:
        import grafanalib  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("grafanalib is not installed (dashboards/build.py needs it)")
        pytest.skip("grafanalib not installed")
    spec = importlib.util.spec_from_file_location("dashboards_build", BUILD)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboard_matches_build_output() -> None:
    build = _load_build()
    assert build.render() == DASHBOARD.read_text(encoding="utf-8"), (
        "dashboards/harness-overview.json is stale: run python dashboards/build.py"
    )
    assert build.render() == build.render()  # deterministic


def test_build_check_cli() -> None:
    _load_build()
    proc = subprocess.run(
        [sys.executable, str(BUILD), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_dashboard_content() -> None:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["uid"] == "harness-overview"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["run"]["multi"] and variables["run"]["includeAll"]
    panels = {p["title"]: p for p in dash["panels"]}
    exprs = {t: p["targets"][0]["expr"] for t, p in panels.items()}
    assert 'sum(rate(harness_requests_total{run=~"$run"}[10s]))' in exprs.values()
    assert 'sum(rate(harness_request_failures_total{run=~"$run"}[10s]))' in exprs.values()
    assert (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(harness_request_duration_seconds_bucket{run=~"$run"}[10s])))'
    ) in exprs.values()
    assert 'sum by (served_by) (rate(harness_requests_total{run=~"$run"}[10s]))' in exprs.values()
    assert exprs["VIP holder"] == 'harness_vip_holder{run=~"$run"}'
    assert panels["VIP holder"]["type"] == "state-timeline"
    assert 'haproxy_server_status{state="UP"}' in exprs["HAProxy server states"]
    assert "harness_sessions_lost_total" in exprs["Sessions lost"]
    for title, p in panels.items():
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert p["targets"][0]["datasource"] == p["datasource"], title
        assert p["type"] in ("timeseries", "state-timeline"), title
        if "harness_" in exprs[title]:
            assert 'run=~"$run"' in exprs[title], title
    ids = [p["id"] for p in dash["panels"]]
    assert len(set(ids)) == len(ids)
    tag_queries = [
        a for a in dash["annotations"]["list"] if a.get("target", {}).get("type") == "tags"
    ]
    assert tag_queries and tag_queries[0]["target"]["tags"] == ["harness"]
