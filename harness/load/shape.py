"""A Locust LoadTestShape driven by the topology's `load.stages` (passed as JSON in
HARNESS_STAGES): each stage holds its user count for its duration. Loaded beside the user's
locustfile (`-f user.py,harness/load/shape.py`) only when stages are declared."""

from __future__ import annotations

import json
import os

from locust import LoadTestShape


class HarnessStages(LoadTestShape):
    stages = json.loads(os.environ.get("HARNESS_STAGES", "[]"))

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        elapsed = 0.0
        for stage in self.stages:
            elapsed += stage["duration"]
            if t < elapsed:
                return int(stage["users"]), float(
                    stage.get("spawn_rate") or max(10, stage["users"])
                )
        return None
