"""bench/load.py's locustfile: every user hits `GET /health` back to back (no think time), so
the figure is the load generator's own cost, not a scenario's. It imports nothing from the
harness: under raw `locust` it is plain Locust, under `python -m harness.load.locust_main` the
harness plugin counts the same requests.

BENCH_WINDOW=path:skip:length (set by bench/load.py on both sides alike): at the test start,
`skip` seconds later and `length` seconds after that, append one JSON line to `path` with the
instant, Locust's own request count and this process's CPU seconds (user, system) and context
switches (getrusage), so CPU per
request can be taken over the steady middle of the run, startup and stop left out. It reads
what Locust counts anyway: no per-request work is added."""

from __future__ import annotations

import json
import os
import resource
import time
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task

WINDOW = os.environ.get("BENCH_WINDOW", "")


class HealthUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health")


def _mark(environment: Any, path: str) -> None:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    line = {
        "t": time.time(),
        "requests": environment.runner.stats.total.num_requests,
        "cpu": ru.ru_utime + ru.ru_stime,
        "user": ru.ru_utime,
        "sys": ru.ru_stime,
        "voluntary_switches": ru.ru_nvcsw,  # waits (the event loop found nothing to do)
        "involuntary_switches": ru.ru_nivcsw,  # preempted (the cores were busy)
    }
    with open(path, "a") as fh:
        fh.write(json.dumps(line) + "\n")


def _windows(environment: Any, path: str, skip: float, length: float) -> None:
    _mark(environment, path)
    gevent.sleep(skip)
    _mark(environment, path)
    gevent.sleep(length)
    _mark(environment, path)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kw: Any) -> None:
    if WINDOW:
        path, skip, length = WINDOW.rsplit(":", 2)
        gevent.spawn(_windows, environment, path, float(skip), float(length))
