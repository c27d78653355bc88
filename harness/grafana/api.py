"""Grafana's HTTP API through ``grafana-client`` (``GrafanaApi``): it handles the URL (a path
prefix such as ``https://host/grafana/`` works), Bearer-token or basic auth
(``https://user:pass@host/``), timeouts, and turns HTTP errors into ``GrafanaException``.

* :func:`push_dashboard` — ``POST /api/dashboards/db`` with ``overwrite: true``.
* :func:`annotate` — ``POST /api/annotations``, returns the annotation id.
* :func:`update_annotation_end` — ``PATCH /api/annotations/{id}`` with only ``timeEnd``;
  grafana-client's ``partial_update_annotation`` always sends ``"tags": []`` too, which would
  wipe the annotation's tags, so the raw client is used here.

The endpoints and bodies follow Grafana's documented HTTP API (annotations: ``time`` and
``timeEnd`` in epoch milliseconds, ``tags``, ``text``, optional ``dashboardUID``).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from grafana_client import GrafanaApi

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
HARNESS_TAG = "harness"


def _normalise_url(url: str) -> str:
    """grafana-client appends ``api`` to the URL path verbatim: it must end in ``/``."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"not a Grafana base URL: {url!r} (expected e.g. http://localhost:3000)")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def grafana_api(url: str, token: str | None, timeout: float = DEFAULT_TIMEOUT) -> GrafanaApi:
    """A ``GrafanaApi`` for *url*; *token* is sent as ``Authorization: Bearer``.

    Without a token, credentials embedded in the URL (``http://user:pass@host``) are
    used for basic auth, else the requests are anonymous.
    """
    return GrafanaApi.from_url(_normalise_url(url), credential=token or None, timeout=timeout)


def _ms(value: float | int) -> int:
    return int(round(value))


def _load_dashboard(dashboard_json: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(dashboard_json, Path):
        data: Any = json.loads(dashboard_json.read_text(encoding="utf-8"))
    elif isinstance(dashboard_json, str):
        data = json.loads(dashboard_json)
    else:
        data = dashboard_json
    if not isinstance(data, Mapping):
        raise TypeError("dashboard JSON must be an object")
    # accept the export/API wrapper {"dashboard": {...}, "meta": ...} as well
    if "dashboard" in data and isinstance(data["dashboard"], Mapping) and "panels" not in data:
        data = data["dashboard"]
    return copy.deepcopy(dict(data))


def push_dashboard(
    url: str,
    token: str | None,
    dashboard_json: Mapping[str, Any] | str | Path,
    folder_uid: str | None = None,
    *,
    message: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Create or replace a dashboard (matched by its ``uid``); returns Grafana's reply.

    *dashboard_json* is the dashboard model (dict, JSON text or a path to a JSON file),
    bare or wrapped as ``{"dashboard": ...}``. Its ``id`` is cleared so that the
    same file can be pushed to any Grafana instance.
    """
    dashboard = _load_dashboard(dashboard_json)
    dashboard["id"] = None
    payload: dict[str, Any] = {"dashboard": dashboard, "overwrite": True}
    if folder_uid:
        payload["folderUid"] = folder_uid
    if message:
        payload["message"] = message
    result = grafana_api(url, token, timeout).dashboard.update_dashboard(payload)
    return dict(result) if isinstance(result, Mapping) else {"result": result}


def annotate(
    url: str,
    token: str | None,
    text: str,
    tags: Iterable[str],
    time_ms: int | float,
    time_end_ms: int | float | None = None,
    dashboard_uid: str | None = None,
    *,
    panel_id: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Create an annotation (a region if *time_end_ms* is given); returns its id.

    Without *dashboard_uid* it is an organisation annotation, shown on every
    dashboard whose annotation query matches its tags.
    """
    payload: dict[str, Any] = {"time": _ms(time_ms), "tags": [str(t) for t in tags], "text": text}
    if time_end_ms is not None:
        payload["timeEnd"] = _ms(time_end_ms)
    if dashboard_uid:
        payload["dashboardUID"] = dashboard_uid
        if panel_id is not None:
            payload["panelId"] = panel_id
    reply = grafana_api(url, token, timeout).client.POST("/annotations", json=payload)
    try:
        return int(reply["id"])
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"unexpected reply from POST /api/annotations: {reply!r}") from exc


def update_annotation_end(
    url: str,
    token: str | None,
    annotation_id: int,
    time_end_ms: int | float,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Set the end of an existing annotation (turning a point into a region)."""
    grafana_api(url, token, timeout).client.PATCH(
        f"/annotations/{int(annotation_id)}", json={"timeEnd": _ms(time_end_ms)}
    )


def health(
    url: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """``GET /api/health`` (``{"database": "ok", "version": ...}``); raises if unreachable."""
    reply = grafana_api(url, token, timeout).client.GET("/health")
    return dict(reply) if isinstance(reply, Mapping) else {"result": reply}
