"""What a fault needs from the running stack, and the contract every fault keeps."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from docker.models.containers import Container

from harness.plan.model import RunPlan


@dataclass
class FaultContext:
    containers: dict[str, Container]  # instance -> container (all of the run's)
    run_id: str
    plan: RunPlan
    rng: random.Random = field(
        default_factory=lambda: random.Random(0)
    )  # seeded with topology.seed


class FaultLike(Protocol):
    """inject() applies the fault; rollback() undoes it and is safe to call twice, or after a
    failed or partial inject()."""

    kind: str
    target: str  # a human-readable description of what was hit (instance names, link)
    detail: dict[str, Any]

    def inject(self) -> None: ...

    def rollback(self) -> None: ...
