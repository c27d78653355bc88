"""Kept for imports written before harness/run/: the run lives in harness.run."""

from harness.run import PHASES, Run, RunResult, build_images, fault_targets, new_run_id

__all__ = ["PHASES", "Run", "RunResult", "build_images", "fault_targets", "new_run_id"]
