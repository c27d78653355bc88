"""`harness grafana push`: push the overview dashboard to Grafana (GRAFANA_URL, GRAFANA_TOKEN)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.output import out
from harness.errors import InfrastructureError, SpecError


def add_parser(sub: Any) -> None:
    gr = sub.add_parser(
        "grafana", help="push the dashboard to Grafana (GRAFANA_URL, GRAFANA_TOKEN)"
    )
    gr.add_argument("action", choices=["push"])
    gr.add_argument("--dashboard", default="dashboards/harness-overview.json")
    gr.add_argument("--url")
    gr.add_argument("--token")
    gr.set_defaults(func=cmd_grafana)


def cmd_grafana(args: argparse.Namespace) -> int:
    import os

    from harness.grafana import push_dashboard

    url = args.url or os.environ.get("GRAFANA_URL")
    token = args.token or os.environ.get("GRAFANA_TOKEN")
    if not url:
        raise SpecError(["harness grafana push: no Grafana URL (set GRAFANA_URL or pass --url)"])
    try:
        result = push_dashboard(url, token, Path(args.dashboard))
    except Exception as exc:  # noqa: BLE001 - any client/transport error is one line for the user
        raise InfrastructureError(f"pushing to Grafana at {url} failed: {exc}") from None
    out.print(f"pushed {args.dashboard} to {url}: {result.get('url', result.get('status', 'ok'))}")
    return 0
