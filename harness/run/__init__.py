"""A run: its phases as data (phases.py, the PHASES sequence in core.py), the events its
listeners subscribe to (events.py, subscribers.py), the load phase's reckoning (load.py) and the
collection of stale runs at its start (stale.py)."""

from harness.run.core import PHASES, Run, RunResult, build_images, new_run_id
from harness.run.events import Events, FaultEvent, PhaseChanged
from harness.run.phases import Phase, Stage
from harness.run.subscribers import fault_targets

__all__ = [
    "PHASES",
    "Events",
    "FaultEvent",
    "Phase",
    "PhaseChanged",
    "Run",
    "RunResult",
    "Stage",
    "build_images",
    "fault_targets",
    "new_run_id",
]
