"""Wait strategies: poll until a container is ready; on timeout, the error carries its logs."""

from __future__ import annotations

import socket
import time

import httpx
from docker.errors import APIError
from docker.models.containers import Container

from harness.errors import WaitTimeout
from harness.plan.model import Wait


def _logs(container: Container) -> str:
    try:
        return container.logs(tail=30).decode(errors="replace")
    except Exception:  # noqa: BLE001 - logs are a courtesy on an error path
        return ""


def _ready_once(container: Container, wait: Wait) -> bool:
    if wait.kind == "http":
        try:
            return httpx.get(wait.target, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False
    if wait.kind == "tcp":
        host, _, port = wait.target.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return True
        except OSError:
            return False
    cmd = f"test -f {wait.target}" if wait.kind == "file" else wait.target
    try:
        code, _ = container.exec_run(["/bin/sh", "-c", cmd])
    except APIError:  # not running (any more): the caller's reload tells an exit
        return False
    return code == 0


# Seconds between two polls: a request from here is cheap, an exec (a process started in the
# container) is not, so those poll less often.
INTERVAL = {"http": 0.1, "tcp": 0.1}
EXEC_INTERVAL = 0.25


def wait_ready(container: Container, name: str, wait: Wait, interval: float | None = None) -> None:
    """Poll until the wait's condition holds. The container's state is asked only after a
    poll failed (was it an exit?), so a ready container costs one poll."""
    if wait.kind == "none":
        return
    step = interval if interval is not None else INTERVAL.get(wait.kind, EXEC_INTERVAL)
    deadline = time.monotonic() + wait.timeout
    while True:
        if _ready_once(container, wait):
            return
        container.reload()
        if container.status in ("exited", "dead"):
            raise WaitTimeout(
                f"{name} exited (status {container.attrs['State'].get('ExitCode')})",
                0,
                _logs(container),
            )
        if time.monotonic() > deadline:
            raise WaitTimeout(f"{name} ({wait.kind} {wait.target})", wait.timeout, _logs(container))
        time.sleep(step)
