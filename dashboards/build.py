#!/usr/bin/env python3
"""Generate dashboards/harness-overview.json (dashboard as code, with grafanalib).

    python dashboards/build.py            # rewrite the JSON beside this file
    python dashboards/build.py --check    # exit 1 if the committed JSON is stale
    python dashboards/build.py -o -       # print it

The output is deterministic (sorted keys, fixed panel ids and layout), so the
committed file can be checked for drift in the tests. Every query selects the run
through the ``$run`` template variable (label ``run``; multi-select, "All" = ``.*``)
and the Prometheus data source through ``${datasource}``. Fault windows pushed by
``harness.grafana.GrafanaAnnotator`` show up via the annotation query on tag
``harness``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Annotations,
    Dashboard,
    GridPos,
    StateTimeline,
    Target,
    Template,
    Templating,
    Time,
    TimeSeries,
)

from harness.observe import metrics
from harness.verdict.data import HEARTBEAT_NOW, HEARTBEAT_STORED

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "harness-overview.json"

UID = "harness-overview"
TITLE = "Harness overview"
SCHEMA_VERSION = 39  # Grafana 10.x; the panel types used here need >= 8
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_DS = {"type": "grafana", "uid": "-- Grafana --"}
RUN = 'run=~"$run"'
BASE_THRESHOLDS = [{"color": "green", "value": None}]

QUERIES = {
    "rps": f"sum(rate({metrics.REQUESTS.total}{{{RUN}}}[10s]))",
    "errors": f"sum(rate({metrics.REQUEST_FAILURES.total}{{{RUN}}}[10s]))",
    "p95": (
        "histogram_quantile(0.95, sum by (le) "
        f"(rate({metrics.REQUEST_DURATION.bucket}{{{RUN}}}[10s])))"
    ),
    "backends": f"sum by (served_by) (rate({metrics.REQUESTS.total}{{{RUN}}}[10s]))",
    "vip": f"{metrics.VIP_HOLDER.name}{{{RUN}}}",
    # HAProxy's own exporter: one series per proxy/server/state, 1 for the current state
    "haproxy": 'min by (proxy, server) (haproxy_server_status{state="UP"})',
    "sessions_lost": f"sum by (run) ({metrics.SESSIONS_LOST.total}{{{RUN}}})",
    # the data tier (issue 12): the mysqld exporters' heartbeat, read_only and semi-sync
    # status, and a redis exporter beside each Sentinel (its view of the master)
    "lag": f"{HEARTBEAT_NOW}{{{RUN}}} - {HEARTBEAT_STORED}{{{RUN}}}",
    "db_primary": f"1 - mysql_global_variables_read_only{{{RUN}}}",
    "semi_sync": f"mysql_global_status_rpl_semi_sync_master_status{{{RUN}}}",
    "sentinel": f"redis_sentinel_master_status{{{RUN}}}",
}


def _target(expr: str, legend: str, ref: str = "A") -> Target:
    return Target(
        expr=expr,
        legendFormat=legend,
        refId=ref,
        datasource=DATASOURCE,
        intervalFactor=1,
    )


def _panel(title: str, expr: str, legend: str, pos: GridPos) -> dict[str, Any]:
    """What every panel here shares: one query on the run's Prometheus, at `pos`."""
    return {
        "title": title,
        "dataSource": DATASOURCE,
        "targets": [_target(expr, legend)],
        "gridPos": pos,
        "maxDataPoints": None,
        "thresholds": BASE_THRESHOLDS,
    }


def _timeseries(
    title: str, expr: str, legend: str, unit: str, pos: GridPos, **kw: Any
) -> TimeSeries:
    return TimeSeries(
        **_panel(title, expr, legend, pos),
        unit=unit,
        fillOpacity=10,
        lineWidth=2,
        showPoints="never",
        tooltipMode="multi",
        legendCalcs=["lastNotNull", "max"],
        **kw,
    )


def _states(
    title: str,
    expr: str,
    legend: str,
    pos: GridPos,
    one: tuple[str, str],
    zero: tuple[str, str],
    description: str,
) -> StateTimeline:
    """A 0/1 series per instance as a timeline: `one` and `zero` are (text, colour)."""
    return StateTimeline(
        **_panel(title, expr, legend, pos),
        mappings=[
            {
                "type": "value",
                "options": {
                    "1": {"text": one[0], "color": one[1], "index": 0},
                    "0": {"text": zero[0], "color": zero[1], "index": 1},
                },
            }
        ],
        description=description,
    )


def build_dashboard() -> Dashboard:
    panels = [
        _timeseries(
            "Load: requests/s",
            QUERIES["rps"],
            "requests/s",
            "reqps",
            GridPos(h=8, w=12, x=0, y=0),
            description="All requests issued by the Locust workers through the VIP.",
        ),
        _timeseries(
            "Errors: failed requests/s",
            QUERIES["errors"],
            "errors/s",
            "reqps",
            GridPos(h=8, w=12, x=12, y=0),
            colorMode="fixed",
            extraJson={"fieldConfig": {"defaults": {"color": {"fixedColor": "red"}}}},
        ),
        _timeseries(
            "Latency p95",
            QUERIES["p95"],
            "p95",
            "s",
            GridPos(h=8, w=12, x=0, y=8),
        ),
        _timeseries(
            "Traffic per backend (served_by)",
            QUERIES["backends"],
            "{{served_by}}",
            "reqps",
            GridPos(h=8, w=12, x=12, y=8),
            description="Requests/s by the backend that answered (X-Served-By).",
        ),
        _states(
            "VIP holder",
            QUERIES["vip"],
            "{{service}}: {{lb}}",
            GridPos(h=7, w=12, x=0, y=16),
            ("holds VIP", "green"),
            ("backup", "transparent"),
            "1 while an instance holds its service's virtual IP (keepalived "
            "MASTER): the load balancers' VIP, and a database's or Redis's, whose holder is "
            "its primary.",
        ),
        _states(
            "HAProxy server states",
            QUERIES["haproxy"],
            "{{proxy}}/{{server}}",
            GridPos(h=7, w=12, x=12, y=16),
            ("UP", "green"),
            ("DOWN", "red"),
            'haproxy_server_status{state="UP"}: 1 = UP, 0 = not UP.',
        ),
        _timeseries(
            "Sessions lost",
            QUERIES["sessions_lost"],
            "{{run}}",
            "short",
            GridPos(h=7, w=24, x=0, y=23),
            drawStyle="line",
            lineInterpolation="stepAfter",
            description="Sticky sessions whose state was lost (counter, per run).",
        ),
        _timeseries(
            "Replication lag (heartbeat)",
            QUERIES["lag"],
            "{{instance}}",
            "s",
            GridPos(h=8, w=12, x=0, y=30),
            description="Now minus the heartbeat row the primary rewrites every 100 ms, per "
            "MariaDB instance (what replication_lag asserts on; exact to the millisecond).",
        ),
        _states(
            "Database primary (read_only off)",
            QUERIES["db_primary"],
            "{{instance}}",
            GridPos(h=8, w=12, x=12, y=30),
            ("primary", "green"),
            ("replica", "blue"),
            "1 - mysql_global_variables_read_only: the instance that takes writes.",
        ),
        _states(
            "Semi-sync replication (primary side)",
            QUERIES["semi_sync"],
            "{{instance}}",
            GridPos(h=7, w=12, x=0, y=38),
            ("semi-sync on", "green"),
            ("off / async", "orange"),
            "Rpl_semi_sync_master_status: 1 while the primary waits for a "
            "replica's acknowledgement; 0 once it fell back to async (timeout) or is a replica.",
        ),
        _states(
            "Sentinel's view of the master",
            QUERIES["sentinel"],
            "{{instance}} sees {{master_address}}",
            GridPos(h=7, w=12, x=12, y=38),
            ("master ok", "green"),
            ("master down", "red"),
            "Each Sentinel's master (redis_sentinel_master_status, by "
            "master_address): a failover shows as a new address.",
        ),
    ]

    templating = Templating(
        list=[
            Template(
                name="datasource",
                label="Data source",
                query="prometheus",
                type="datasource",
            ),
            Template(
                name="run",
                label="Run",
                query=f"label_values({metrics.REQUESTS.total}, run)",
                dataSource=DATASOURCE,
                includeAll=True,
                multi=True,
                allValue=".*",
                refresh=2,  # on time range change: new runs appear
                sort=2,  # alphabetical descending: run ids start with the date
            ),
        ]
    )
    annotations = Annotations(
        list=[
            {
                "builtIn": 1,
                "datasource": GRAFANA_DS,
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
                "target": {"limit": 100, "matchAny": False, "tags": [], "type": "dashboard"},
            },
            {
                "datasource": GRAFANA_DS,
                "enable": True,
                "hide": False,
                "iconColor": "red",
                "name": "Harness faults",
                "target": {"limit": 500, "matchAny": False, "tags": ["harness"], "type": "tags"},
            },
        ]
    )
    return Dashboard(
        title=TITLE,
        uid=UID,
        description="Load, errors, latency, backends, VIP and HAProxy state of harness runs, "
        "and the data tier: replication lag, primary, semi-sync and Sentinel's master.",
        tags=["harness"],
        panels=panels,
        templating=templating,
        annotations=annotations,
        time=Time("now-30m", "now"),
        refresh="10s",
        timezone="utc",
        graphTooltip=1,  # shared crosshair
        schemaVersion=SCHEMA_VERSION,
    ).auto_panel_ids()


def render() -> str:
    """The dashboard JSON text exactly as committed."""
    data = json.loads(json.dumps(build_dashboard().to_json_data(), cls=DashboardEncoder))
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", default=str(OUTPUT), help="file to write, '-' = stdout")
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.output == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.output)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != text:
            print(f"{out} is out of date: run python dashboards/build.py", file=sys.stderr)
            return 1
        return 0
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
