"""The Locust process's event log (events.jsonl): one JSON object a line, millisecond
timestamps, written by the plugin and the locustfiles' reports (`log_event`)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

_lock = threading.Lock()
_fh: Any = None


def open_log(path: str) -> None:
    global _fh
    _fh = open(path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process


def log_event(kind: str, **fields: Any) -> None:
    if _fh is None:
        return
    line = json.dumps({"ts": round(time.time(), 3), "event": kind, **fields}, separators=(",", ":"))
    with _lock:
        _fh.write(line + "\n")


def flush() -> None:
    if _fh is not None:
        _fh.flush()
