"""Inside the Locust process: every request sent through Locust's HTTP clients is tracked
until its request event fires, so each is counted exactly once (see harness/load/plugin.py for
the attribution rule). A request whose event never fires (its check raised, or its user was
killed at the stop) is settled here as a failure."""

from __future__ import annotations

import inspect
import itertools
import time
from collections.abc import Callable
from typing import Any

from gevent import GreenletExit

from harness.load.eventlog import log_event

ABORTED = "aborted: in flight when the load stopped"


class RequestAborted(Exception):
    """The request was still in flight when its user was stopped."""


_user_ids = itertools.count(1)


def user_key(user: Any) -> int:
    """A key for one simulated user, unique within the process (unlike id(), never reused)."""
    try:
        return int(user._harness_uid)
    except AttributeError:
        uid = user._harness_uid = next(_user_ids)
        return uid


# Requests sent and not yet counted: token -> (session, method, name, intended send time, start).
# The session gives the request event and the user when the request is settled (both fixed for
# the session's life). Plain dict, no lock: under gevent nothing preempts these few operations.
_inflight: dict[int, tuple[Any, Any, Any, float | None, float]] = {}
_tokens = itertools.count(1)
_stopping = {"at": 0.0}  # when the load began to stop (0: it has not)


def _settle(token: int, exc: BaseException | None, response: Any = None) -> None:
    """Count a tracked request whose event never fired, as a failure: aborted (exc None, or the
    user's greenlet was killed) or raised (the exception escaped the request or its check)."""
    entry = _inflight.pop(token, None)
    if entry is None:
        return
    session, method, name, intended, start = entry
    name, user = str(name), session.user
    exception: Exception
    aborted = exc is None or isinstance(exc, GreenletExit)
    if aborted:
        exception, response = RequestAborted(ABORTED), None
    elif isinstance(exc, Exception):
        exception = exc
    else:
        exception = RuntimeError(f"{type(exc).__name__}: {exc}")
    ctx: dict[str, Any] = {"harness_user": None if user is None else user_key(user)}
    if aborted and _stopping["at"] and start >= _stopping["at"]:
        # sent after the stop began (a user woke from its wait between Locust's check and its
        # kill) and killed by Locust at once: the harness cut it, the system was never given
        # the chance to answer it, so it is not a request of the test at all
        log_event("stop_artifact", name=name)
        return
    if intended is not None:
        ctx["harness_intended"] = intended
    session.request_event.fire(
        request_type=method,
        name=name,
        response_time=(time.time() - start) * 1000.0,
        response_length=0,
        response=response,
        exception=exception,
        context=ctx,
        start_time=start,
        url=name,
    )


def abort_in_flight() -> int:
    """Count every request still in flight as aborted; returns how many."""
    tokens = list(_inflight)
    for token in tokens:
        _settle(token, None)
    return len(tokens)


def _tracked_request(original: Callable[..., Any]) -> Callable[..., Any]:
    params = list(inspect.signature(original).parameters)  # self, method, url, name, ...
    name_at, context_at = params.index("name") - 3, params.index("context") - 3
    now, inflight, tokens = time.time, _inflight, _tokens

    def request(self: Any, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        # the hot path: once per request (bench/plugin_cost.py measures it)
        token = next(tokens)
        if len(args) > context_at:  # context passed positionally
            listed = list(args)
            listed[context_at] = {**(listed[context_at] or {}), "harness_req": token}
            args = tuple(listed)
        else:
            ctx = kwargs.get("context")
            kwargs["context"] = {**ctx, "harness_req": token} if ctx else {"harness_req": token}
        name = kwargs.get("name") or (args[name_at] if len(args) > name_at else None)
        inflight[token] = (
            self,
            method,
            name or self.request_name or url,
            getattr(self.user, "_harness_intended", None),
            now(),
        )
        try:
            return original(self, method, url, *args, **kwargs)
        except BaseException as e:
            _settle(token, e)
            raise

    request._harness = True  # type: ignore[attr-defined]
    return request


def _tracked_exit(original: Callable[..., Any]) -> Callable[..., Any]:
    def __exit__(self: Any, exc: Any, value: Any, tb: Any) -> Any:
        result = original(self, exc, value, tb)
        if exc is not None:  # without an exception Locust always fires the event
            token = (self.request_meta.get("context") or {}).get("harness_req")
            if token in _inflight:
                _settle(token, value if value is not None else exc(), self)
        return result

    __exit__._harness = True  # type: ignore[attr-defined]
    return __exit__


def track_requests() -> None:
    """Wrap Locust's HTTP clients so every request sent is counted exactly once."""
    from locust.clients import HttpSession
    from locust.clients import ResponseContextManager as HttpRCM
    from locust.contrib.fasthttp import FastHttpSession
    from locust.contrib.fasthttp import ResponseContextManager as FastRCM

    for session in (FastHttpSession, HttpSession):
        if not getattr(session.request, "_harness", False):
            session.request = _tracked_request(session.request)  # type: ignore[method-assign]
    for rcm in (FastRCM, HttpRCM):
        if not getattr(rcm.__exit__, "_harness", False):
            rcm.__exit__ = _tracked_exit(rcm.__exit__)  # type: ignore[method-assign]
