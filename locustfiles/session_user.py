"""Each user logs in once, then loops: `GET /whoami` (its own user must come back: anything else
is a lost session, reported and followed by a forced re-login) and `POST /orders` with a
client-generated id (a 200 is an acknowledged write)."""

from __future__ import annotations

import uuid

from locust import FastHttpUser, between, task

from harness.load.plugin import session_lost, session_started, write_acked


class SessionUser(FastHttpUser):
    wait_time = between(0.05, 0.15)

    def on_start(self) -> None:
        self.user = f"u-{uuid.uuid4().hex[:12]}"
        self.login()

    def login(self) -> None:
        with self.client.post("/login", json={"user": self.user}, catch_response=True) as r:
            if r.status_code == 200:
                session_started(self.user)
            else:
                r.failure(f"login failed: HTTP {r.status_code}")

    @task(3)
    def whoami(self) -> None:
        with self.client.get("/whoami", catch_response=True) as r:
            served_by = r.headers.get("X-Served-By", "") if r.headers else ""
            if r.status_code == 200:
                user = (r.json() or {}).get("user")
                if user == self.user:
                    return
                r.failure(f"session belongs to {user!r}, not {self.user!r}")
                session_lost("user_changed", self.user, served_by)
            elif r.status_code == 401:
                r.failure("session vanished")
                session_lost("vanished", self.user, served_by)
            else:
                r.failure(f"HTTP {r.status_code}")
                return
        self.login()

    @task(1)
    def order(self) -> None:
        order_id = uuid.uuid4().hex
        with self.client.post("/orders", json={"id": order_id, "item": "book"}, catch_response=True) as r:
            if r.status_code == 200:
                write_acked(order_id, r.headers.get("X-Served-By", "") if r.headers else "")
            else:
                r.failure(f"order not acknowledged: HTTP {r.status_code}")
