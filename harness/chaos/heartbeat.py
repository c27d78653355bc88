"""`heartbeat_freeze`: stop a registered web node's heartbeats to the service registry. Its
registration sidecar (images/web/register.sh, PID in /run/harness-register.pid) is frozen with
SIGSTOP: the node itself keeps serving, so only the registry can tell the gateways to drop it,
when the lease it no longer renews expires. Rollback sends SIGCONT; the sidecar then finds its
lease gone and registers again, and the gateways take the node back."""

from __future__ import annotations

from typing import Any

from docker.errors import APIError
from docker.models.containers import Container

from harness.chaos.base import FaultContext
from harness.chaos.container import ContainerFault, recover_each, status
from harness.errors import InfrastructureError
from harness.spec.models import HeartbeatFreezeFault

PIDFILE = "/run/harness-register.pid"


def signal_sidecar(c: Container, sig: str) -> None:
    """Send `sig` (STOP or CONT) to the registration sidecar in `c`."""
    code, out = c.exec_run(["sh", "-c", f'kill -{sig} "$(cat {PIDFILE})"'])
    if code != 0:
        raise InfrastructureError(
            f"heartbeat_freeze: no registration sidecar to signal in {c.name} "
            f"({out.decode(errors='replace').strip() or f'kill -{sig} exited {code}'})"
        )


def resume(c: Container) -> bool:
    """SIGCONT the sidecar if its container still runs; True when it was sent."""
    if status(c) != "running":
        return False
    signal_sidecar(c, "CONT")
    return True


class Fault(ContainerFault):
    kind = "heartbeat_freeze"
    params: HeartbeatFreezeFault
    undo_failures = (APIError, InfrastructureError)

    def __init__(self, params: HeartbeatFreezeFault, ctx: FaultContext) -> None:
        super().__init__(params, ctx)
        self.target = f"heartbeats@{self.target}"

    def _apply(self, c: Container) -> None:
        signal_sidecar(c, "STOP")

    def _undo(self, c: Container) -> None:
        resume(c)


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    """Let the heartbeats go on where the journal says they were frozen."""
    if not detail.get("restore", True):
        return []
    return recover_each(
        kind,
        detail,
        lambda c: "resumed the heartbeats of" if resume(c) else None,
        "resume its heartbeats",
    )
