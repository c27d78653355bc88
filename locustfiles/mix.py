"""A mix of user classes (weights set in the topology's `load.user_classes`):
session readers (log in once, then `GET /whoami`), writers (log in, then `POST /orders`),
and anonymous visitors (`GET /health`, no session)."""

from __future__ import annotations

import uuid

from locust import FastHttpUser, between, task

from harness.load.plugin import session_lost, session_started, write_acked


class _LoggedIn(FastHttpUser):
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


class SessionReader(_LoggedIn):
    weight = 3

    @task
    def whoami(self) -> None:
        with self.client.get("/whoami", catch_response=True) as r:
            if r.status_code == 200 and (r.json() or {}).get("user") == self.user:
                return
            reason = "vanished" if r.status_code == 401 else ("user_changed" if r.status_code == 200 else "")
            r.failure(f"whoami: HTTP {r.status_code}")
            if not reason:
                return
            session_lost(reason, self.user, r.headers.get("X-Served-By", "") if r.headers else "")
        self.login()


class Writer(_LoggedIn):
    weight = 1

    @task
    def order(self) -> None:
        order_id = uuid.uuid4().hex
        with self.client.post("/orders", json={"id": order_id, "item": "book"}, catch_response=True) as r:
            if r.status_code == 200:
                write_acked(order_id, r.headers.get("X-Served-By", "") if r.headers else "")
            else:
                r.failure(f"order not acknowledged: HTTP {r.status_code}")


class Anonymous(FastHttpUser):
    weight = 1
    wait_time = between(0.1, 0.3)

    @task
    def health(self) -> None:
        self.client.get("/health")
