"""`process_kill`: kill one process inside a container that stays up (php-fpm behind a living
Nginx answers 502; a dead HAProxy makes Keepalived demote its node). The images' PID 1 is a shell
supervisor that does not restart children, so rollback starts the process again itself, with
the supervisor's command line, through a detached exec whose output goes to PID 1's (so it still
shows in `docker logs`)."""

from __future__ import annotations

import shlex
import time
from typing import Any

from docker.errors import APIError
from docker.models.containers import Container

from harness.chaos.base import FaultContext
from harness.chaos.container import ContainerFault, recover_each, status
from harness.errors import InfrastructureError
from harness.roles import process, restartable
from harness.spec.models import ProcessKillFault

# The supervisors' command lines (images/lb/supervise.sh, images/web/supervise.sh), and what must
# happen before one starts again, as each kind declares them (harness/roles.py).
RESTART = {name: p.restart for name in restartable() if (p := process(name))}
PRESTART = {name: p.prestart for name in restartable() if (p := process(name))}
LIVE_STATES = "R,S,D,T"
SETTLE = 5.0  # after our own signal, a process still there is one still dying  # pgrep must not count zombies as running


def signal_process(c: Container, name: str, signal: str = "SIGKILL") -> None:
    """SIGKILL hits every process called `name`: a SIGKILLed master leaves its workers orphaned
    and still serving (seen with php-fpm and nginx). Other signals go to the oldest one, the
    master, which takes its workers down itself (SIGTERM, SIGQUIT) or not (SIGSTOP)."""
    sig = signal.upper().removeprefix("SIG")
    cmd = ["pkill", "--signal", sig, "-x", name] + ([] if sig == "KILL" else ["-o"])
    code, out = c.exec_run(cmd)
    if code == 1:
        raise InfrastructureError(f"no process called '{name}' runs in {c.name}")
    if code != 0:
        raise InfrastructureError(
            f"{shlex.join(cmd)} in {c.name} failed: {out.decode(errors='replace').strip()}"
        )


def running(c: Container, name: str) -> bool:
    code, _ = c.exec_run(["pgrep", "-r", LIVE_STATES, "-x", name])
    return code == 0


def wait_running(c: Container, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not running(c, name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def start_process(c: Container, name: str, timeout: float = 5.0, settle: float = 0.0) -> bool:
    """Start `name` again unless it runs; True when it had to. Waits until it is there.
    `settle`: how long one that is still shutting down (SIGTERMed Keepalived takes ~1 s) may
    take to go, instead of being mistaken for a running one."""
    if status(c) != "running":
        return False
    deadline = time.monotonic() + settle
    while running(c, name):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    line = f"{PRESTART.get(name, 'true')}; exec {RESTART[name]} >/proc/1/fd/1 2>/proc/1/fd/2"
    c.exec_run(["sh", "-c", line], detach=True)
    if not wait_running(c, name, timeout):
        raise InfrastructureError(f"{name} did not start again in {c.name} within {timeout:g}s")
    return True


class Fault(ContainerFault):
    kind = "process_kill"
    params: ProcessKillFault
    undo_failures = (APIError, InfrastructureError)

    def __init__(self, params: ProcessKillFault, ctx: FaultContext) -> None:
        if params.restore and params.process not in RESTART:
            raise InfrastructureError(
                f"process_kill: cannot restart '{params.process}' (known: {', '.join(RESTART)}); "
                "set restore: false to leave it dead"
            )
        super().__init__(params, ctx)
        self.target = f"{params.process}@{self.target}"
        self.detail.update(process=params.process, signal=params.signal)

    def _apply(self, c: Container) -> None:
        signal_process(c, self.params.process, self.params.signal)

    def _undo(self, c: Container) -> None:
        start_process(c, self.params.process, settle=SETTLE)


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    """Start the process again where the journal says it was killed and should come back."""
    name = detail.get("process", "")
    if not detail.get("restore") or name not in RESTART:
        return []
    return recover_each(
        kind,
        detail,
        lambda c: f"restarted {name} in" if start_process(c, name) else None,
        f"restart {name}",
    )
