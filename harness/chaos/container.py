"""Container faults: `stop` (graceful, 5 s, then SIGKILL), `restart`, `pause` (frozen: the node
neither dies nor answers, the nastiest failure for health checks), and the base `kill` uses.

Rollback looks at the container's real state instead of trusting a flag, so it is idempotent and
also right after a partial inject (two targets, the second failed) or a failed Docker call that
took effect anyway. `detail` carries container ids and names so `recover()` can undo a pause
(or start a stopped node) after the harness itself was killed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from harness.chaos.base import BaseFault, FaultContext, undo_each
from harness.chaos.targets import describe, resolve
from harness.errors import InfrastructureError
from harness.runtime.docker import client
from harness.spec.models import ContainerFault as ContainerParams
from harness.spec.models import Target

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


class Targeted(Protocol):
    """The parameters of a fault on target containers (container faults, process_kill,
    heartbeat_freeze): which instances, and whether rollback undoes it."""

    @property
    def target(self) -> Target: ...

    @property
    def restore(self) -> bool: ...


def reason(exc: Exception) -> str:
    """Why a Docker call (its engine's explanation) or one of ours failed."""
    return str(exc.explanation) if isinstance(exc, APIError) else str(exc)


class ContainerFault(BaseFault):
    """Apply `_apply` to each target container; rollback applies `_undo` where it was tried.
    An undo that raises one of `undo_failures` is kept to be tried again (base.undo_each)."""

    kind = ""
    params: Targeted
    undo_failures: tuple[type[Exception], ...] = (APIError,)

    def __init__(self, params: Targeted, ctx: FaultContext) -> None:
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
            failed=self.undo_failures,
            reason=reason,
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


def recover_each(
    kind: str,
    detail: dict[str, Any],
    act: Callable[[Container], str | None],
    could_not: str,
    *,
    gone: tuple[type[Exception], ...] = (NotFound,),
    gone_means: str = "is gone",
    failed: tuple[type[Exception], ...] = (APIError, InfrastructureError),
) -> list[str]:
    """Undo a fault in each container the journal names, by id: `act` returns what it did
    ("unpaused", "restarted php-fpm8.2 in"), or None when there was nothing to do. One line per
    container acted on, gone, or failed (`could not {could_not}`)."""
    done = []
    for ref in detail.get("containers", []):
        who = f"{ref['instance']} ({ref['name']})"
        try:
            did = act(client().containers.get(ref["id"]))
            if did:
                done.append(f"{kind}: {did} {who}")
        except gone:
            done.append(f"{kind}: {who} {gone_means}")
        except failed as exc:
            done.append(f"{kind}: {ref['instance']}: could not {could_not} ({reason(exc)})")
    return done


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    """Undo from the journal alone: unpause always (a frozen node helps nobody), start stopped
    containers only when asked (a killed node staying dead may be what the user wanted)."""

    def act(c: Container) -> str | None:
        if unpause_if_paused(c):
            return "unpaused"
        return "started" if restart_stopped and start_if_stopped(c) else None

    return recover_each(kind, detail, act, "recover", failed=(APIError,))
