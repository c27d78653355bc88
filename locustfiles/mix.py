"""A mix of user classes (weights set in the topology's `load.user_classes`):
session readers (log in once, then `GET /whoami`), writers (log in, then `POST /orders`),
and anonymous visitors (`GET /health`, no session)."""

from __future__ import annotations

from locust import FastHttpUser, between, task

from harness.load.users import LoggedInUser


class SessionReader(LoggedInUser):
    weight = 3

    @task
    def whoami(self) -> None:
        self.check_session()


class Writer(LoggedInUser):
    weight = 1

    @task
    def order(self) -> None:
        self.place_order()


class Anonymous(FastHttpUser):
    weight = 1
    wait_time = between(0.1, 0.3)

    @task
    def health(self) -> None:
        self.client.get("/health")
