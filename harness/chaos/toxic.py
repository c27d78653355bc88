"""The eight link faults, one class: a Toxiproxy toxic on a declared link (`latency`,
`bandwidth`, `timeout`, `reset_peer`, `slow_close`, `slicer`, `limit_data`), or `down`, which
disables the link's proxy (new connections refused, open ones closed).

The model speaks seconds; Toxiproxy speaks milliseconds (slicer's `delay`: microseconds).
Each toxic gets a unique name so two faults on one link never collide, and `detail` carries
the API URL, proxy and toxic name so `recover()` can remove it with nothing but the journal."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from harness.chaos.base import BaseFault, FaultContext
from harness.errors import InfrastructureError
from harness.spec.models import TOXIC_KINDS, ToxicFault
from harness.toxiproxy.client import NotFound, ToxiproxyClient, ToxiproxyError

_serial = itertools.count(1)
REQUIRED = {
    "latency": "latency",
    "bandwidth": "rate",
    "slicer": "average_size",
    "limit_data": "bytes",
}


def _ms(seconds: float | None) -> int:
    return round((seconds or 0) * 1000)


def attributes(kind: str, p: ToxicFault) -> dict[str, int]:
    """Toxiproxy's attributes for `kind` from the model's fields (absent = Toxiproxy's default)."""
    need = REQUIRED.get(kind)
    if need is not None and getattr(p, need) is None:
        raise InfrastructureError(f"{kind} on {p.link}: '{need}' is required")
    return {
        "latency": lambda: {"latency": _ms(p.latency), "jitter": _ms(p.jitter)},
        "bandwidth": lambda: {"rate": p.rate or 0},
        "timeout": lambda: {"timeout": _ms(p.timeout)},
        "reset_peer": lambda: {"timeout": _ms(p.timeout)},
        "slow_close": lambda: {"delay": _ms(p.delay)},
        "slicer": lambda: {
            "average_size": p.average_size or 0,
            "size_variation": p.size_variation or 0,
            "delay": round((p.delay or 0) * 1_000_000),
        },
        "limit_data": lambda: {"bytes": p.bytes or 0},
        "down": lambda: {},
    }[kind]()


class Fault(BaseFault):
    def __init__(self, params: ToxicFault, ctx: FaultContext, kind: str = "latency") -> None:
        if kind not in TOXIC_KINDS:
            raise ValueError(f"not a toxic kind: {kind}")
        if params.link not in ctx.plan.toxiproxy:
            known = ", ".join(ctx.plan.toxiproxy) or "none"
            raise InfrastructureError(
                f"{kind}: no Toxiproxy for link '{params.link}' (links: {known})"
            )
        self.kind, self.params = kind, params
        self.api, self.proxy = ctx.plan.toxiproxy[params.link]
        self.target = params.link
        self.detail: dict[str, Any] = {"link": params.link, "api": self.api, "proxy": self.proxy}
        if kind == "down":
            self.detail["enabled"] = False
        else:
            self.detail.update(
                toxic=f"{kind}_{params.stream}_{next(_serial)}",
                type=kind,
                stream=params.stream,
                toxicity=params.toxicity,
                attributes=attributes(kind, params),
            )
        self.tried = False

    def inject(self) -> None:
        self.tried = True
        d = self.detail
        with _api(self.api, f"{self.kind} on {self.target}") as api:
            if self.kind == "down":
                api.disable(self.proxy)
            else:
                api.add_toxic(
                    self.proxy, d["type"], d["attributes"], d["stream"], d["toxicity"], d["toxic"]
                )

    def rollback(self) -> None:
        if self.tried:
            undo(self.detail)
            self.tried = False


def undo(detail: dict[str, Any]) -> str:
    """Remove the toxic or re-enable the proxy; already gone counts as done."""
    with _api(detail["api"], f"rollback on {detail['link']}") as api:
        if "toxic" not in detail:
            try:
                api.enable(detail["proxy"])
                return f"re-enabled proxy {detail['proxy']}"
            except NotFound:
                return f"proxy {detail['proxy']} is gone"
        try:
            api.remove_toxic(detail["proxy"], detail["toxic"])
            return f"removed toxic {detail['toxic']} from {detail['proxy']}"
        except NotFound:
            return f"toxic {detail['toxic']} was already gone from {detail['proxy']}"


@contextmanager
def _api(url: str, what: str) -> Iterator[ToxiproxyClient]:
    """A client whose errors become InfrastructureError naming what was being done."""
    client = ToxiproxyClient(url, timeout=5.0)
    try:
        yield client
    except (ToxiproxyError, httpx.HTTPError) as exc:
        raise InfrastructureError(f"{what}: Toxiproxy at {url}: {exc}") from None
    finally:
        client.close()


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    try:
        return [f"{kind} on {detail.get('link')}: {undo(detail)}"]
    except InfrastructureError as exc:
        return [f"{kind} on {detail.get('link')}: could not undo ({exc})"]
