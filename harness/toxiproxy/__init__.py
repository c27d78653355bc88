"""A Toxiproxy-API-compatible TCP fault-injection proxy, standard library only.

No package registry available to the harness ships the Toxiproxy server, so the harness
carries its own: ``python3 -m harness.toxiproxy --host 0.0.0.0 --port 8474`` inside a
container (Debian ``python3`` plus a copy of this folder), or ``ToxiproxyServer`` on a
background thread for tests.  The API matches Toxiproxy 2.x closely enough for the
official clients; extras are ``GET /metrics`` (Prometheus text) and ``--seed`` for
reproducible toxicity and jitter decisions.

The server path must stay stdlib-only, so this module never imports the HTTP client at
import time; ``ToxiproxyClient`` (httpx based) lives in ``harness.toxiproxy.client`` and
is only resolved lazily here on attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .server import VERSION, ToxiproxyServer

if TYPE_CHECKING:
    from .client import ToxiproxyClient

__all__ = ["VERSION", "ToxiproxyClient", "ToxiproxyServer"]


def __getattr__(name: str) -> Any:
    if name == "ToxiproxyClient":
        from .client import ToxiproxyClient

        return ToxiproxyClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
