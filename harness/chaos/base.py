"""What a fault needs from the running stack, and the contract every fault keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from docker.models.containers import Container


@dataclass
class FaultContext:
    containers: dict[str, Container]  # instance -> container
    run_id: str


class FaultLike(Protocol):
    kind: str
    target: str
    detail: dict[str, Any]

    def inject(self) -> None: ...

    def rollback(self) -> None: ...
