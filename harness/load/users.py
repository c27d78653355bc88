"""Building blocks for locustfiles against the reference app (imported only inside the Locust
processes): a user that logs in once and the two checks the verdict counts on, so every
locustfile reports lost sessions and acknowledged writes the same way.

Every check runs inside `checked(r)`: an exception in a check (say `r.json()` on an HTML body)
marks the request failed instead of escaping the with-block, where Locust would drop the
request from every statistic."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from locust import FastHttpUser, between
from locust.exception import InterruptTaskSet, RescheduleTask, StopTest, StopUser

from harness.load.plugin import (
    read_checked,
    session_lost,
    session_started,
    session_written,
    write_acked,
    write_failed,
)

_CONTROL = (StopUser, StopTest, InterruptTaskSet, RescheduleTask)  # Locust's flow, not errors


@contextmanager
def checked(r: Any) -> Iterator[None]:
    """Use as `with self.client.get(..., catch_response=True) as r, checked(r):`."""
    try:
        yield
    except _CONTROL:
        raise
    except Exception as e:
        r.failure(f"check raised {type(e).__name__}: {e}"[:300])


def served_by(r: Any) -> str:
    try:
        return str((r.headers or {}).get("X-Served-By", "") or "")
    except Exception:
        return ""


def identity(r: Any) -> str | None:
    """The user a `GET /whoami` answer names, or None when the body is no identity at all
    (not JSON, e.g. an HTML sign-in page, or JSON without a "user" string)."""
    try:
        body = json.loads(r.content or b"")
    except (ValueError, TypeError):
        return None
    user = body.get("user") if isinstance(body, dict) else None
    return user if isinstance(user, str) and user else None


class LoggedInUser(FastHttpUser):
    abstract = True
    wait_time = between(0.05, 0.15)

    def on_start(self) -> None:
        self.user = f"u-{uuid.uuid4().hex[:12]}"
        self.login()

    def login(self) -> None:
        with (
            self.client.post("/login", json={"user": self.user}, catch_response=True) as r,
            checked(r),
        ):
            if r.status_code == 200:
                session_started(self.user)
            else:
                r.failure(f"login failed: HTTP {r.status_code}")

    def check_session(self) -> None:
        """`GET /whoami` must return this user. A 200 naming another user, or no user at all (a
        non-JSON body such as an HTML sign-in page, JSON without "user"), and a 401 are lost
        sessions: a failure, reported, then a forced re-login. Other errors (503: store down)
        are failures only."""
        relogin = False
        with self.client.get("/whoami", catch_response=True) as r, checked(r):
            node = served_by(r)
            if r.status_code == 200:
                user = identity(r)
                if user == self.user:
                    return
                relogin = True
                if user is None:
                    r.failure(f"200 without {self.user!r}'s identity (not a JSON user)")
                    session_lost("not_identity", self.user, node)
                else:
                    r.failure(f"session belongs to {user!r}, not {self.user!r}")
                    session_lost("user_changed", self.user, node)
            elif r.status_code == 401:
                relogin = True
                r.failure("session vanished")
                session_lost("vanished", self.user, node)
            else:
                r.failure(f"HTTP {r.status_code}")
        if relogin:
            self.login()

    def place_order(self) -> str | None:
        """`POST /orders` with a client-generated id; a 200 is an acknowledged write (the body
        is not read: the app answers 200 only after commit). Returns the id once acknowledged."""
        order_id = uuid.uuid4().hex
        with (
            self.client.post(
                "/orders", json={"id": order_id, "item": "book"}, catch_response=True
            ) as r,
            checked(r),
        ):
            if r.status_code == 200:
                write_acked(order_id, served_by(r))
                return order_id
            r.failure(f"order not acknowledged: HTTP {r.status_code}")
            write_failed("db")
        return None

    def write_session(self) -> None:
        """`POST /session`: the app writes to this user's session and answers 200 once the store
        took it (the first one after failed ones dates a store failover: fault -> first session
        write through the new master). A 401 is a lost session, as in `check_session`."""
        relogin = False
        with self.client.post("/session", catch_response=True) as r, checked(r):
            if r.status_code == 200:
                session_written(self.user)
                return
            if r.status_code == 401:
                relogin = True
                r.failure("session vanished")
                session_lost("vanished", self.user, served_by(r))
            else:
                r.failure(f"session write failed: HTTP {r.status_code}")
                write_failed("session")
        if relogin:
            self.login()

    def place_and_read_back(self) -> None:
        """Read-your-writes: place an order, then at once `GET /orders/{id}` through the app's
        read path. A 404 is a stale read (the server read from has not applied the user's own
        acknowledged write yet): reported, not a failed request; other errors are failures."""
        order_id = self.place_order()
        if order_id is None:
            return
        with (
            self.client.get(f"/orders/{order_id}", name="/orders/[id]", catch_response=True) as r,
            checked(r),
        ):
            read_from = str((r.headers or {}).get("X-DB-Read", "") or "")
            if r.status_code in (200, 404):
                read_checked(order_id, r.status_code == 404, read_from, served_by(r))
                r.success()
            else:
                r.failure(f"read-back failed: HTTP {r.status_code}")
