"""The go file a Locust process started ahead of its load waits for (harness/load/standby.py).
Standard library only: it runs in the Locust process, and the tests import it."""

from __future__ import annotations

import os
import time


def wait_for_go(path: str, parent: int, timeout: float) -> bool:
    """True once `path` exists; False when the parent process is gone (this process was
    reparented) or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if os.getppid() != parent or time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
