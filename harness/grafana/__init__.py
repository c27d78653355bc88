"""Grafana integration: push the overview dashboard (api.py), annotate fault windows
(annotator.py: :class:`GrafanaAnnotator`, what the runner holds during a run)."""

from __future__ import annotations

from harness.grafana.annotator import GrafanaAnnotator
from harness.grafana.api import (
    annotate,
    grafana_api,
    health,
    push_dashboard,
    update_annotation_end,
)

__all__ = [
    "GrafanaAnnotator",
    "annotate",
    "grafana_api",
    "health",
    "push_dashboard",
    "update_annotation_end",
]
