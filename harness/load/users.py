"""Building blocks for locustfiles against the reference app (imported only inside the Locust
processes): a user that logs in once and the two checks the verdict counts on, so every
locustfile reports lost sessions and acknowledged writes the same way."""

from __future__ import annotations

import uuid

from locust import FastHttpUser, between

from harness.load.plugin import session_lost, session_started, write_acked


class LoggedInUser(FastHttpUser):
    abstract = True
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

    def check_session(self) -> None:
        """`GET /whoami` must return this user: anything else is a lost session, reported and
        followed by a forced re-login; other errors (503: store down) are failures only."""
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

    def place_order(self) -> None:
        """`POST /orders` with a client-generated id; a 200 is an acknowledged write."""
        order_id = uuid.uuid4().hex
        with self.client.post(
            "/orders", json={"id": order_id, "item": "book"}, catch_response=True
        ) as r:
            if r.status_code == 200:
                write_acked(order_id, r.headers.get("X-Served-By", "") if r.headers else "")
            else:
                r.failure(f"order not acknowledged: HTTP {r.status_code}")
