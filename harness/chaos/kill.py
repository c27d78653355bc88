"""`kill`: SIGKILL a container (the node dies at once, open connections reset). Rollback starts
it again only when asked (`restore: true`): a dead node staying dead is usually the point."""

from __future__ import annotations

from typing import Any

from docker.errors import APIError

from harness.chaos.base import FaultContext
from harness.errors import InfrastructureError
from harness.spec.models import KillFault


class Fault:
    kind = "kill"

    def __init__(self, params: KillFault, ctx: FaultContext) -> None:
        self.params, self.ctx = params, ctx
        self.target = params.target
        self.detail: dict[str, Any] = {"restore": params.restore}
        self.injected = False

    def inject(self) -> None:
        try:
            self.ctx.containers[self.target].kill(signal="SIGKILL")
        except APIError as exc:
            raise InfrastructureError(f"kill {self.target} failed: {exc.explanation}") from None
        self.injected = True

    def rollback(self) -> None:
        if self.injected and self.params.restore:
            self.ctx.containers[self.target].start()
