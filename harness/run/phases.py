"""A run's phases, in order, as data. Each names the step (a method of Run) that performs it
and when it runs:

- VALIDATE runs when the Run is made: nothing is started before the topology is valid;
- BODY steps run in order, and the first error stops them;
- CLEANUP runs whatever happened, shielded from signals (faults rolled back, Locust stopped,
  the run's resources removed unless --keep);
- AFTER runs once the journal is final: the report files.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    VALIDATE = "validate"
    BODY = "body"
    CLEANUP = "cleanup"
    AFTER = "after"


@dataclass(frozen=True)
class Phase:
    name: str
    method: str  # the Run method that performs it (looked up on the run, so a subclass or a
    # test can replace one step)
    stage: Stage = Stage.BODY
    bring_up: bool = False  # part of `harness up` (which stops after the baseline)

    def run(self, run: Any) -> None:
        getattr(run, self.method)()


def of(phases: tuple[Phase, ...], stage: Stage, bring_up: bool = False) -> list[Phase]:
    return [p for p in phases if p.stage == stage and (p.bring_up or not bring_up)]


# The order of a run. `harness up` runs the bring_up phases and leaves the stack up.
PHASES: tuple[Phase, ...] = (
    Phase("validate", "validate", Stage.VALIDATE),
    Phase("build", "build", bring_up=True),
    Phase("up", "up", bring_up=True),
    Phase("baseline", "baseline_check", bring_up=True),
    Phase("load", "load_and_chaos"),
    Phase("post-run", "post_run"),
    Phase("verdict", "verdict"),
    Phase("down", "down", Stage.CLEANUP),
    Phase("report", "report", Stage.AFTER),
)
