"""Issue 12, ask 6: the data tier's state as Prometheus series, and where they are shown. A
Sentinel topology scrapes a second redis exporter beside every Sentinel (its view of the
master); the Grafana dashboard has the lag, primary, semi-sync and Sentinel panels, each
selecting the run; the plugin exports the resumed-write instant the failover figure reads."""

from __future__ import annotations

import json
from pathlib import Path

from harness.observe import metrics
from harness.plan.build import make_plan
from harness.spec.loader import load_topology

REPO = Path(__file__).resolve().parents[3]


def test_every_sentinel_is_scraped_beside_its_redis() -> None:
    p = make_plan(load_topology(REPO / "topologies/redis-sentinel.yaml"), "r1", "10.213.9.0/24", [])
    jobs = {(t.job, t.instance): t.address for t in p.scrape}
    for inst in ("redis-1", "redis-2", "redis-3"):
        assert jobs[("sentinel", inst)] == f"{p.container(inst).ip}:9355"
        assert jobs[("redis", inst)] == f"{p.container(inst).ip}:9121"


def test_a_redis_without_sentinel_has_no_sentinel_target() -> None:
    p = make_plan(load_topology(REPO / "topologies/ha.yaml"), "r1", "10.213.9.0/24", [])
    assert not [t for t in p.scrape if t.job == "sentinel"]


def test_the_dashboard_shows_the_data_tier_per_run() -> None:
    dash = json.loads((REPO / "dashboards/harness-overview.json").read_text())
    exprs = {p["title"]: p["targets"][0]["expr"] for p in dash["panels"]}
    want = {
        "Replication lag (heartbeat)": "mysql_heartbeat_now_timestamp_seconds",
        "Database primary (read_only off)": "mysql_global_variables_read_only",
        "Semi-sync replication (primary side)": "mysql_global_status_rpl_semi_sync_master_status",
        "Sentinel's view of the master": "redis_sentinel_master_status",
        "VIP holder": metrics.VIP_HOLDER.name,
    }
    for title, metric in want.items():
        assert metric in exprs[title] and 'run=~"$run"' in exprs[title], title


def test_the_resumed_write_instant_is_a_plugin_metric() -> None:
    assert metrics.WRITE_RESUMED in metrics.PLUGIN
    assert metrics.WRITE_RESUMED.labels == ("store",)
    assert {metrics.READS_CHECKED, metrics.READS_STALE} <= set(metrics.PLUGIN)
