"""Container faults: `stop` (graceful, 5 s, then SIGKILL), `restart`, `pause` (frozen: the node
neither dies nor answers, the nastiest failure for health checks), and the base `kill` uses.

Rollback looks at the container's real state instead of trusting a flag, so it is idempotent and
also right after a partial inject (two targets, the second failed) or a failed Docker call that
took effect anyway. `detail` carries container ids and names so `recover()` can undo a pause
(or start a stopped node) after the harness itself was killed."""

from __future__ import annotations

from typing import Any

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from harness.chaos.base import BaseFault, FaultContext, undo_each
from harness.chaos.targets import describe, resolve
from harness.errors import InfrastructureError
from harness.runtime.docker import client
from harness.spec.models import ContainerFault as ContainerParams

STOP_TIMEOUT = 5
STOPPED = ("exited", "created", "dead")


def container_detail(ctx: FaultContext, instances: list[str]) -> list[dict[str, str]]:
    out = []
    for inst in instances:
        c = ctx.containers.get(inst)
        if c is None:
            raise InfrastructureError(f"{inst} has no container in this run")
        out.append({"instance": inst, "id": c.id or "", "name": c.name or ""})
    return out


def status(c: Container) -> str:
    c.reload()
    return str(c.status)


def start_if_stopped(c: Container) -> bool:
    if status(c) in STOPPED:
        c.start()
        return True
    return False


def unpause_if_paused(c: Container) -> bool:
    if status(c) == "paused":
        c.unpause()
        return True
    return False


class ContainerFault(BaseFault):
    """Apply `_apply` to each target container; rollback applies `_undo` where it was tried."""

    kind = ""

    def __init__(self, params: ContainerParams, ctx: FaultContext) -> None:
        self.params, self.ctx = params, ctx
        self.instances = resolve(params.target, ctx)
        self.target = describe(self.instances)
        self.detail: dict[str, Any] = {
            "instances": self.instances,
            "containers": container_detail(ctx, self.instances),
            "restore": params.restore,
        }
        self.tried: list[str] = []

    def _apply(self, c: Container) -> None:
        raise NotImplementedError

    def _undo(self, c: Container) -> None:
        """Bring the container back if it is still in the fault's state; no-op otherwise."""

    def inject(self) -> None:
        for inst in self.instances:
            self.tried.append(inst)
            try:
                self._apply(self.ctx.containers[inst])
            except APIError as exc:
                raise InfrastructureError(f"{self.kind} {inst} failed: {exc.explanation}") from None

    def rollback(self) -> None:
        if not self.params.restore:
            return
        undo_each(
            self.kind,
            self.tried,
            lambda inst: self._undo(self.ctx.containers[inst]),
            gone=(NotFound,),  # removed meanwhile: nothing left to undo
            failed=(APIError,),
            reason=lambda exc: str(exc.explanation),
        )


class Stop(ContainerFault):
    kind = "stop"

    def _apply(self, c: Container) -> None:
        c.stop(timeout=STOP_TIMEOUT)

    def _undo(self, c: Container) -> None:
        start_if_stopped(c)


class Restart(ContainerFault):
    """Rollback has nothing to undo; it only starts the node if a failed restart left it down."""

    kind = "restart"

    def _apply(self, c: Container) -> None:
        c.restart(timeout=STOP_TIMEOUT)

    def _undo(self, c: Container) -> None:
        start_if_stopped(c)


class Pause(ContainerFault):
    kind = "pause"

    def _apply(self, c: Container) -> None:
        c.pause()

    def _undo(self, c: Container) -> None:
        unpause_if_paused(c)


KINDS: dict[str, type[ContainerFault]] = {"stop": Stop, "restart": Restart, "pause": Pause}


def Fault(params: ContainerParams, ctx: FaultContext, kind: str = "stop") -> ContainerFault:
    """The registry's entry point: one module serves three kinds."""
    return KINDS[kind](params, ctx)


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    """Undo from the journal alone: unpause always (a frozen node helps nobody), start stopped
    containers only when asked (a killed node staying dead may be what the user wanted)."""
    done = []
    for ref in detail.get("containers", []):
        try:
            c = client().containers.get(ref["id"])
            if unpause_if_paused(c):
                done.append(f"{kind}: unpaused {ref['instance']} ({ref['name']})")
            elif restart_stopped and start_if_stopped(c):
                done.append(f"{kind}: started {ref['instance']} ({ref['name']})")
        except NotFound:
            done.append(f"{kind}: {ref['instance']} ({ref['name']}) is gone")
        except APIError as exc:
            done.append(f"{kind}: {ref['instance']}: could not recover ({exc.explanation})")
    return done
