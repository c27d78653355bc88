"""Queries against the run's Prometheus. An unreachable Prometheus is an infrastructure error
(exit 2): without it nothing can be judged. So is an answer that carries a remote-read warning
(`runtime: hosts` with `prometheus: {url}`, the user's Prometheus not answering): Prometheus
then answers `success` from its own storage alone, an empty result where the user's series
were, and `sum(x) or vector(0)` would read 0 instead of "no data"."""

from __future__ import annotations

import time
from typing import Any

import httpx

from harness.errors import InfrastructureError


class Prometheus:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout, trust_env=False)  # its own: never a proxy's

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            resp = self.http.get(f"{self.url}{path}", params=params)
        except httpx.HTTPError as exc:
            raise InfrastructureError(f"Prometheus at {self.url} unreachable: {exc}") from None
        body = (
            resp.json()
            if resp.headers.get("content-type", "").startswith("application/json")
            else {}
        )
        if resp.status_code != 200 or body.get("status") != "success":
            raise InfrastructureError(
                f"Prometheus rejected {params.get('query')!r}: {body.get('error', resp.text[:200])}"
            )
        failed = [w for w in body.get("warnings") or [] if "remote_read" in str(w).lower()]
        if failed:
            raise InfrastructureError(
                f"Prometheus answered {params.get('query')!r} without the remote storage it reads: "
                f"{failed[0]}"
            )
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return list(self._get("/api/v1/query", params)["result"])

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        """The value of a query that yields one sample (None when it yields none)."""
        result = self.query(expr, at)
        if not result:
            return None
        return float(result[0]["value"][1])

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self._get(
            "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step}
        )
        return list(data["result"])

    def wait_for(
        self, expr: str, timeout: float, predicate: Any = lambda v: v is not None
    ) -> float | None:
        """Poll `expr` until predicate(value) holds; return the value (None on timeout)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.scalar(expr)
            except InfrastructureError:
                value = None
            if predicate(value):
                return value
            time.sleep(0.25)
        return None

    def targets_up(self) -> dict[str, bool]:
        data = self._get("/api/v1/targets", {"state": "active"})
        return {
            t["labels"].get("instance", "?"): t["health"] == "up" for t in data["activeTargets"]
        }
