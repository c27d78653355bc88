"""`kill`: SIGKILL a container (the node dies at once, open connections reset). Rollback starts
it again only when asked (`restore: true`): a dead node staying dead is usually the point."""

from __future__ import annotations

from typing import Any

from docker.models.containers import Container

from harness.chaos import container
from harness.chaos.container import ContainerFault, start_if_stopped


class Fault(ContainerFault):
    kind = "kill"

    def _apply(self, c: Container) -> None:
        c.kill(signal="SIGKILL")

    def _undo(self, c: Container) -> None:
        start_if_stopped(c)


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    return container.recover(kind, detail, restart_stopped)
