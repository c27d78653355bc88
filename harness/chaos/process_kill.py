"""`process_kill`: kill one process inside a container that stays up (php-fpm behind a living
Nginx answers 502; a dead HAProxy makes Keepalived demote its node). The images' PID 1 is a shell
supervisor that does not restart children, so rollback starts the process again itself, with
the supervisor's command line, through a detached exec whose output goes to PID 1's (so it still
shows in `docker logs`)."""

from __future__ import annotations

import shlex
import time
from typing import Any

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from harness.chaos.base import BaseFault, FaultContext, undo_each
from harness.chaos.container import container_detail, status
from harness.chaos.targets import describe, resolve
from harness.errors import InfrastructureError
from harness.roles import process, restartable
from harness.runtime.docker import client
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


class Fault(BaseFault):
    kind = "process_kill"

    def __init__(self, params: ProcessKillFault, ctx: FaultContext) -> None:
        if params.restore and params.process not in RESTART:
            raise InfrastructureError(
                f"process_kill: cannot restart '{params.process}' (known: {', '.join(RESTART)}); "
                "set restore: false to leave it dead"
            )
        self.params, self.ctx = params, ctx
        self.instances = resolve(params.target, ctx)
        self.target = f"{params.process}@{describe(self.instances)}"
        self.detail: dict[str, Any] = {
            "instances": self.instances,
            "containers": container_detail(ctx, self.instances),
            "process": params.process,
            "signal": params.signal,
            "restore": params.restore,
        }
        self.tried: list[str] = []

    def inject(self) -> None:
        for inst in self.instances:
            self.tried.append(inst)
            try:
                signal_process(self.ctx.containers[inst], self.params.process, self.params.signal)
            except APIError as exc:
                raise InfrastructureError(
                    f"process_kill {inst} failed: {exc.explanation}"
                ) from None

    def rollback(self) -> None:
        if not self.params.restore:
            return
        undo_each(
            self.kind,
            self.tried,
            lambda inst: start_process(
                self.ctx.containers[inst], self.params.process, settle=SETTLE
            ),
            gone=(NotFound,),
            failed=(APIError, InfrastructureError),
        )


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    """Start the process again where the journal says it was killed and should come back."""
    name = detail.get("process", "")
    if not detail.get("restore") or name not in RESTART:
        return []
    done = []
    for ref in detail.get("containers", []):
        try:
            if start_process(client().containers.get(ref["id"]), name):
                done.append(f"{kind}: restarted {name} in {ref['instance']} ({ref['name']})")
        except NotFound:
            done.append(f"{kind}: {ref['instance']} ({ref['name']}) is gone")
        except (APIError, InfrastructureError) as exc:
            done.append(f"{kind}: {ref['instance']}: could not restart {name} ({exc})")
    return done
