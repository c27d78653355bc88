"""bench/load.py's locustfile: every user hits `GET /health` back to back (no think time), so
the figure is the load generator's own cost, not a scenario's. It imports nothing from the
harness: under raw `locust` it is plain Locust, under `python -m harness.load.locust_main` the
harness plugin counts the same requests."""

from __future__ import annotations

from locust import FastHttpUser, constant, task


class HealthUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health")
