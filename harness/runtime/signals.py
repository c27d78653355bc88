"""SIGINT and SIGTERM become `Interrupted`, raised in the main thread, so every `finally` in the
run (fault rollback, Locust stop, teardown) runs exactly as on any other failure. A second
signal while cleaning up is ignored: cleanup is the one thing that must finish."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from harness.errors import Interrupted

_state = {"interrupted": False}


def _handler(signum: int, frame: FrameType | None) -> None:
    if _state["interrupted"]:
        return
    _state["interrupted"] = True
    raise Interrupted(f"interrupted by {signal.Signals(signum).name}; rolled back and cleaned up")


@contextmanager
def exit_signals() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state["interrupted"] = False
    previous: dict[int, Any] = {
        s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def shielded() -> Iterator[None]:
    """Cleanup code: further SIGINT/SIGTERM are noted but do not interrupt it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
