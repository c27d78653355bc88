"""Each user logs in once, then loops: `GET /whoami` (its own user must come back: anything else
is a lost session, reported and followed by a forced re-login) and `POST /orders` with a
client-generated id (a 200 is an acknowledged write)."""

from __future__ import annotations

from locust import task

from harness.load.users import LoggedInUser


class SessionUser(LoggedInUser):
    @task(3)
    def whoami(self) -> None:
        self.check_session()

    @task(1)
    def order(self) -> None:
        self.place_order()
