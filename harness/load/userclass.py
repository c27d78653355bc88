"""Inside the Locust process: what the plugin adds to every user class. Each request event
carries the user's key (and, under a fixed rate, the task's intended send time), and a user
stopped while the load goes on leaves the served-again bookkeeping."""

from __future__ import annotations

import time
from typing import Any

from harness.load.requeststats import ClientState
from harness.load.tracking import _stopping, user_key


def fixed_rate(rate: float) -> Any:
    """A wait_time keeping each user on a fixed schedule (1/rate apart). When an answer is late
    the next send is late too; the schedule it should have kept is remembered as the intended
    send time, from which the corrected latency is measured."""
    period = 1.0 / rate

    def wait_time(user: Any) -> float:
        now = time.time()
        nxt = getattr(user, "_harness_next", None)
        nxt = now if nxt is None else nxt + period
        user._harness_next = nxt
        user._harness_intended = nxt
        return max(0.0, nxt - now)

    return wait_time


def _with_harness_context(original: Any) -> Any:
    """Every request event carries the user's key; under a fixed rate the first request of a
    task also carries its intended send time."""

    def context(user: Any) -> dict[str, Any]:
        # the hot path: Locust calls it for every request (bench/plugin_cost.py measures it)
        ctx = original(user)
        try:
            uid = user._harness_uid
        except AttributeError:
            uid = user_key(user)
        ctx = {**ctx, "harness_user": uid} if ctx else {"harness_user": uid}
        intended = getattr(user, "_harness_intended", None)
        if intended is not None:  # only the first request of a task was scheduled
            ctx["harness_intended"] = intended
            user._harness_intended = None
        return ctx

    context._harness = True  # type: ignore[attr-defined]
    return context


def _retiring(original: Any, clients: ClientState) -> Any:
    """A user stopped while the load goes on (a ramp-down) leaves the served-again bookkeeping."""

    def on_stop(user: Any) -> None:
        try:
            original(user)
        finally:
            uid = getattr(user, "_harness_uid", None)
            if uid is not None and not _stopping["at"]:
                clients.retire(uid)

    on_stop._harness = True  # type: ignore[attr-defined]
    return on_stop


def instrument_user_class(cls: Any, clients: ClientState, rate: float = 0.0) -> None:
    if not getattr(cls.context, "_harness", False):
        cls.context = _with_harness_context(cls.context)
    if not getattr(cls.on_stop, "_harness", False):
        cls.on_stop = _retiring(cls.on_stop, clients)
    if rate:
        cls.wait_time = fixed_rate(rate)
