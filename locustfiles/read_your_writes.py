"""Read-your-writes: each user logs in once, then loops placing an order (`POST /orders`, a 200
is an acknowledged write) and reading it back at once (`GET /orders/{id}` through the app's read
path: a replica under `db_reads: replicas`). A read-back that does not find the order is a stale
read, counted for the `stale_reads` assertion."""

from __future__ import annotations

from locust import task

from harness.load.users import LoggedInUser


class OrderReader(LoggedInUser):
    @task
    def order_and_read_back(self) -> None:
        self.place_and_read_back()
