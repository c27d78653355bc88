"""Visitors asking for a page that holds a PHP-FPM worker for 100 ms (`GET /work?ms=100`, a
request waiting on a slow backend): a node with N workers serves at most N x 10 of them a
second, so `users` x `rate` beyond that is offered load past capacity. A 503 or 429 is the
system turning a request away (a failure the `overload` assertion judges by its speed); a
timeout or a 502/504 is a request that stalled.

Locust starts users in batches, one batch a second: without a random start each batch would
keep the same phase of a fixed-rate schedule, and the load would arrive in one burst a second
instead of spread over it."""

from __future__ import annotations

import random

import gevent
from locust import FastHttpUser, constant_throughput, task


class Visitor(FastHttpUser):
    wait_time = constant_throughput(2)  # `load.rate` replaces it with a fixed schedule
    network_timeout = 30.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        gevent.sleep(random.random())  # a phase of its own within the second

    @task
    def work(self) -> None:
        self.client.get("/work?ms=100", name="/work")
