"""`heartbeat_freeze`: stop a registered web node's heartbeats to the service registry. Its
registration sidecar (images/web/register.sh, PID in /run/harness-register.pid) is frozen with
SIGSTOP: the node itself keeps serving, so only the registry can tell the gateways to drop it,
when the lease it no longer renews expires. Rollback sends SIGCONT; the sidecar then finds its
lease gone and registers again, and the gateways take the node back."""

from __future__ import annotations

from typing import Any

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from harness.chaos.base import FaultContext, undo_each
from harness.chaos.container import container_detail, status
from harness.chaos.targets import describe, resolve
from harness.errors import InfrastructureError
from harness.runtime.docker import client
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


class Fault:
    kind = "heartbeat_freeze"

    def __init__(self, params: HeartbeatFreezeFault, ctx: FaultContext) -> None:
        self.params, self.ctx = params, ctx
        self.instances = resolve(params.target, ctx)
        self.target = f"heartbeats@{describe(self.instances)}"
        self.detail: dict[str, Any] = {
            "instances": self.instances,
            "containers": container_detail(ctx, self.instances),
            "restore": params.restore,
        }
        self.tried: list[str] = []

    def inject(self) -> None:
        for inst in self.instances:
            self.tried.append(inst)
            try:
                signal_sidecar(self.ctx.containers[inst], "STOP")
            except APIError as exc:
                raise InfrastructureError(
                    f"heartbeat_freeze {inst} failed: {exc.explanation}"
                ) from None

    def rollback(self) -> None:
        if not self.params.restore:
            return
        undo_each(
            self.kind,
            self.tried,
            lambda inst: resume(self.ctx.containers[inst]),
            gone=(NotFound,),
            failed=(APIError, InfrastructureError),
        )


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    """Let the heartbeats go on where the journal says they were frozen."""
    if not detail.get("restore", True):
        return []
    done = []
    for ref in detail.get("containers", []):
        try:
            if resume(client().containers.get(ref["id"])):
                done.append(f"{kind}: resumed the heartbeats of {ref['instance']} ({ref['name']})")
        except NotFound:
            done.append(f"{kind}: {ref['instance']} ({ref['name']}) is gone")
        except (APIError, InfrastructureError) as exc:
            done.append(f"{kind}: {ref['instance']}: could not resume its heartbeats ({exc})")
    return done
