"""Sessions that are read and written: each user logs in once, then loops `GET /whoami` (its own
user must come back; anything else is a lost session, followed by a re-login) and `POST /session`
(the app writes to the session and answers 200 once the store took it). The first session write
acknowledged after failed ones dates a session store failover (`failover_time`'s `first_write`)."""

from __future__ import annotations

from locust import task

from harness.load.users import LoggedInUser


class SessionWriter(LoggedInUser):
    @task(3)
    def whoami(self) -> None:
        self.check_session()

    @task(1)
    def touch(self) -> None:
        self.write_session()
