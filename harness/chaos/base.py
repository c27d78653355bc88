"""What a fault needs from the running stack, and the contract every fault keeps."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docker.models.containers import Container

from harness.errors import InfrastructureError
from harness.plan.model import RunPlan


@dataclass
class FaultContext:
    containers: dict[str, Container]  # instance -> container (all of the run's)
    run_id: str
    plan: RunPlan
    rng: random.Random = field(
        default_factory=lambda: random.Random(0)
    )  # seeded with topology.seed
    base_dir: Path = Path(".")  # the topology file's directory: a deploy's `app:` is relative to it
    checkpoint: Callable[[], None] = lambda: None  # saves the journal (a long fault's progress)


class BaseFault(ABC):
    """What every fault of harness.chaos.FAULTS is. The schedule journals it before inject()
    and rolls it back in `finally`: inject() applies the fault; rollback() undoes it and is safe
    to call twice, or after a failed or partial inject(). `detail` holds what `recover()` needs
    to undo it from the journal alone, after the harness itself was killed."""

    kind: str = ""
    target: str = ""  # a human-readable description of what was hit (instance names, link)
    detail: dict[str, Any]

    @abstractmethod
    def inject(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...


FaultLike = BaseFault  # the name the schedule knew it by


def undo_each(
    kind: str,
    tried: list[str],
    undo: Callable[[str], object],
    *,
    gone: tuple[type[BaseException], ...],
    failed: tuple[type[BaseException], ...],
    reason: Callable[[Any], str] = str,
) -> None:
    """The per-target rollback every multi-target fault shares: `undo` each instance the fault
    was tried on, in order. An instance whose container (or namespace) is `gone` has nothing left
    to undo; one whose undo `failed` stays in `tried`, so a later rollback tries it again, and
    after the others are done one InfrastructureError names every failure (`reason(exc)`)."""
    errors = []
    for inst in list(tried):
        try:
            undo(inst)
        except gone:
            pass
        except failed as exc:
            errors.append(f"{inst}: {reason(exc)}")
            continue
        tried.remove(inst)
    if errors:
        raise InfrastructureError(f"rollback of {kind} failed: {'; '.join(errors)}")
