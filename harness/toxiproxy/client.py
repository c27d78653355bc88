"""Thin typed client for the Toxiproxy HTTP API (this harness's server or the real one).

Why not ``toxiproxy-python``: it keeps host/port in process-wide class attributes, has
no timeouts and misses update/metrics calls.  This client is per-instance, always
times out, and maps API errors onto exceptions.  ``httpx`` is imported lazily so that
merely importing this module never breaks the stdlib-only server image.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict
from urllib.parse import quote

if TYPE_CHECKING:
    import httpx


class ToxicJSON(TypedDict):
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]


class ProxyJSON(TypedDict):
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[ToxicJSON]


class MetricSample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float


class ToxiproxyError(Exception):
    """An error response from the API (``status`` is the HTTP status code)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class BadRequest(ToxiproxyError):
    """400: invalid JSON, missing field, unknown toxic type or stream."""


class NotFound(ToxiproxyError):
    """404: no such proxy or toxic."""


class Conflict(ToxiproxyError):
    """409: a proxy or toxic with that name already exists."""


_ERRORS: dict[int, type[ToxiproxyError]] = {400: BadRequest, 404: NotFound, 409: Conflict}
_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _p(name: str) -> str:
    return quote(name, safe="")


def parse_metrics(text: str) -> list[MetricSample]:
    """Parse Prometheus text exposition (enough for the counters this server exposes)."""
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        labels = {
            k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            for k, v in _LABEL.findall(match.group(2) or "")
        }
        samples.append(MetricSample(match.group(1), labels, float(match.group(3))))
    return samples


class ToxiproxyClient:
    """Synchronous client; use as a context manager or call ``close()``."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8474",
        timeout: float = 5.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToxiproxyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = self._http.request(method, path, json=body)
        if response.status_code >= 400:
            try:
                message = str(response.json().get("error", response.text))
            except ValueError:
                message = response.text
            raise _ERRORS.get(response.status_code, ToxiproxyError)(response.status_code, message)
        return response

    # -- server ---------------------------------------------------------------------
    def version(self) -> str:
        """Server version; accepts both the JSON (2.6+) and plain-text (older) forms."""
        response = self._request("GET", "/version")
        try:
            return str(response.json()["version"])
        except (ValueError, KeyError, TypeError):
            return response.text.strip()

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        self._request("POST", "/reset")

    def metrics_text(self) -> str:
        return self._request("GET", "/metrics").text

    def metrics(self) -> list[MetricSample]:
        return parse_metrics(self.metrics_text())

    def metric_value(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(
            s.value
            for s in self.metrics()
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    # -- proxies --------------------------------------------------------------------
    def proxies(self) -> dict[str, ProxyJSON]:
        result: dict[str, ProxyJSON] = self._request("GET", "/proxies").json()
        return result

    def create_proxy(
        self, name: str, listen: str, upstream: str, enabled: bool = True
    ) -> ProxyJSON:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        result: ProxyJSON = self._request("POST", "/proxies", body).json()
        return result

    def get_proxy(self, name: str) -> ProxyJSON:
        result: ProxyJSON = self._request("GET", f"/proxies/{_p(name)}").json()
        return result

    def update_proxy(self, name: str, **fields: Any) -> ProxyJSON:
        """Partial update (``listen``, ``upstream``, ``enabled``); POST works on all 2.x."""
        result: ProxyJSON = self._request("POST", f"/proxies/{_p(name)}", fields).json()
        return result

    def enable(self, name: str) -> ProxyJSON:
        return self.update_proxy(name, enabled=True)

    def disable(self, name: str) -> ProxyJSON:
        return self.update_proxy(name, enabled=False)

    def delete_proxy(self, name: str) -> None:
        self._request("DELETE", f"/proxies/{_p(name)}")

    def populate(self, proxies: list[dict[str, Any]]) -> list[ProxyJSON]:
        """Create or replace; an empty list comes back as ``null`` from Toxiproxy."""
        result: list[ProxyJSON] | None = self._request("POST", "/populate", proxies).json()[
            "proxies"
        ]
        return result or []

    # -- toxics ---------------------------------------------------------------------
    def toxics(self, proxy: str) -> list[ToxicJSON]:
        result: list[ToxicJSON] = self._request("GET", f"/proxies/{_p(proxy)}/toxics").json()
        return result

    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: dict[str, Any] | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> ToxicJSON:
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": attributes or {},
        }
        if name is not None:
            body["name"] = name
        result: ToxicJSON = self._request("POST", f"/proxies/{_p(proxy)}/toxics", body).json()
        return result

    def get_toxic(self, proxy: str, name: str) -> ToxicJSON:
        result: ToxicJSON = self._request("GET", f"/proxies/{_p(proxy)}/toxics/{_p(name)}").json()
        return result

    def update_toxic(
        self,
        proxy: str,
        name: str,
        attributes: dict[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> ToxicJSON:
        """Change attributes (merged) and/or toxicity; applies to open connections too."""
        body: dict[str, Any] = {}
        if attributes is not None:
            body["attributes"] = attributes
        if toxicity is not None:
            body["toxicity"] = toxicity
        result: ToxicJSON = self._request(
            "POST", f"/proxies/{_p(proxy)}/toxics/{_p(name)}", body
        ).json()
        return result

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._request("DELETE", f"/proxies/{_p(proxy)}/toxics/{_p(name)}")
