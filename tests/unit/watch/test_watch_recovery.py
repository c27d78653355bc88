"""The recovery watcher: client failures summed over every Locust process (served by tiny local
HTTP servers), a missing process is never "quiet", one span per arm, relapses after recovery,
fault windows held, and LB reports (HAProxy or Nginx) that keep the system unsteady."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from harness.watch.recovery import RecoveryWatcher, failures_total
from harness.watch.recovery_setup import for_run
from tests.fakes import FakeExporter

MASTER_PAGE = """\
# HELP harness_users Users.
# TYPE harness_users gauge
harness_users 10.0
"""


def page(*failures: float) -> str:
    lines = [
        "# HELP harness_request_failures_total Requests that failed.",
        "# TYPE harness_request_failures_total counter",
    ]
    for i, n in enumerate(failures):
        lines.append(
            f'harness_request_failures_total{{name="/w{i}",method="GET",status="502",served_by="none"}} {n}'
        )
    lines.append(
        f'harness_requests_total{{name="/w",method="GET",status="200",served_by="web-1"}} {1000 + sum(failures)}'
    )
    return "\n".join(lines) + "\n"


class Metrics:
    """One Locust process's metrics page, changed by the test."""

    def __init__(self, text: str) -> None:
        self.text = text
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = owner.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads, self.server.block_on_close = True, False
        self.url = f"http://127.0.0.1:{self.server.server_port}/metrics"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def locust() -> Iterator[list[Metrics]]:
    """A master (no request series, as with workers) and two workers."""
    procs = [Metrics(MASTER_PAGE), Metrics(page(1, 2)), Metrics(page(2))]
    yield procs
    for p in procs:
        p.close()


def dead_url() -> str:
    m = Metrics("")
    url = m.url
    m.close()
    return url


class Stack:
    """What the recovery watcher reads from the other watchers."""

    def __init__(self) -> None:
        self.backends: dict[str, dict[str, str]] = {}
        self.holders: dict[str, str | None] = {}
        self.stopped: list[str] = []

    def backend_states(self) -> dict[str, dict[str, str]]:
        return self.backends

    def vip_holders(self) -> dict[str, str | None]:
        return self.holders

    def not_running(self) -> list[str]:
        return self.stopped


def watcher(urls: list[str], relapse_gauge: bool = True) -> tuple[RecoveryWatcher, Stack, Any]:
    stack = Stack()
    exporter = FakeExporter(only=None if relapse_gauge else {"recovered"})
    plan = SimpleNamespace(
        instances=lambda service: [
            SimpleNamespace(instance="lb-1"),
            SimpleNamespace(instance="lb-2"),
        ]
    )
    r = RecoveryWatcher(plan, stack, exporter, urls, background=False)  # type: ignore[arg-type]
    return r, stack, exporter


def run(r: RecoveryWatcher, start: float, end: float, step: float = 0.25) -> None:
    t = start
    while t <= end + 1e-9:
        r.tick(t)
        t = round(t + step, 6)


def test_failures_are_summed_over_every_series_and_process(locust: list[Metrics]) -> None:
    assert failures_total(MASTER_PAGE) == 0 and failures_total(page(1, 2)) == 3
    r, _, _ = watcher([p.url for p in locust])
    r.poll(100.0)
    assert sum(r.totals.values()) == 5
    locust[2].text = page(4)
    r.poll(100.5)
    assert sum(r.totals.values()) == 7 and r.failed_at == 100.5


def test_recovery_is_the_first_instant_from_which_it_stayed_steady(locust: list[Metrics]) -> None:
    r, _, exporter = watcher([p.url for p in locust])
    r.arm(100.0)
    run(r, 100.25, 102.0)
    assert r.recovered_at is None and "not yet 2s" in r.why
    run(r, 102.25, 102.5)
    assert r.recovered_at == 100.25 and r.spans == [(100.0, 100.25)]
    assert exporter.recovered.values == [0, 100.25]


def test_a_worker_failing_keeps_the_system_unsteady_even_though_the_master_is_quiet(
    locust: list[Metrics],
) -> None:
    r, _, _ = watcher([p.url for p in locust])
    r.arm(100.0)
    for i, t in enumerate(
        [100.25, 100.5, 100.75, 101.0, 101.25, 101.5, 101.75, 102.0, 102.25, 102.5]
    ):
        locust[1].text = page(1, 2 + i)  # a failure every tick on worker 1 only
        r.tick(t)
    assert r.recovered_at is None and "client failures" in r.why
    run(r, 102.75, 104.5)
    assert r.recovered_at == 102.5


def test_no_answer_from_any_process_is_not_quiet() -> None:
    r, _, _ = watcher([dead_url(), dead_url()])
    r.arm(100.0)
    run(r, 100.25, 106.0, step=0.5)
    assert r.recovered_at is None and "no figures from" in r.why


def test_one_silent_worker_is_not_quiet_either(locust: list[Metrics]) -> None:
    r, _, _ = watcher([locust[0].url, locust[1].url, dead_url()])
    r.arm(100.0)
    run(r, 100.25, 106.0, step=0.5)
    assert r.recovered_at is None and "no figures from" in r.why


def test_a_relapse_after_recovery_is_recorded_and_rearms(locust: list[Metrics]) -> None:
    r, stack, exporter = watcher([p.url for p in locust])
    r.arm(100.0)
    run(r, 100.25, 102.5)
    assert r.recovered_at == 100.25
    locust[1].text = page(1, 3)  # a client failure again
    r.tick(103.0)
    assert r.relapses == [(103.0, "client failures")]
    assert r.recovered_at is None and exporter.recovered.values[-1] == 0
    assert exporter.relapse.values == [103.0]
    assert r.spans == [(100.0, 100.25), (103.0, None)]
    run(r, 103.25, 105.25)
    assert r.spans[-1] == (103.0, 103.0) and r.recovered_at == 103.0
    stack.backends = {"lb-1": {"web-1": "DOWN", "web-2": "UP"}}  # e.g. Nginx ejecting web-1
    r.tick(106.0)
    assert r.relapses[-1] == (106.0, "lb-1 reports web-1 DOWN")
    run(r, 106.25, 109.0)
    assert r.recovered_at is None and "lb-1 reports web-1 DOWN" in r.why
    stack.backends = {"lb-1": {"web-1": "UP", "web-2": "UP"}}
    run(r, 109.25, 111.5)
    assert r.spans[-1] == (106.0, 109.25)


def test_without_the_relapse_gauge_a_relapse_still_counts(locust: list[Metrics]) -> None:
    r, stack, _ = watcher([p.url for p in locust], relapse_gauge=False)
    r.arm(100.0)
    run(r, 100.25, 102.5)
    stack.stopped = ["web-2"]
    r.tick(103.0)
    assert r.relapses == [(103.0, "not running: web-2")]


def test_a_fault_window_is_not_a_relapse(locust: list[Metrics]) -> None:
    r, stack, _ = watcher([p.url for p in locust])
    r.arm(100.0)
    run(r, 100.25, 102.5)
    r.hold(103.0)
    stack.holders = {"lb": "lb-2"}  # the fault moved the VIP
    locust[2].text = page(9)
    run(r, 103.25, 106.0)
    assert r.relapses == [] and r.recovered_at == 100.25
    stack.holders = {"lb": "lb-1"}
    r.release(106.0)
    run(r, 106.25, 108.5)
    assert r.spans == [(100.0, 100.25), (106.0, 106.25)] and r.relapses == []


def test_each_arm_keeps_its_own_span(locust: list[Metrics]) -> None:
    r, stack, _ = watcher([p.url for p in locust])
    stack.backends = {"lb-1": {"web-1": "DOWN", "web-2": "UP"}}
    r.expected_down = {"web-1"}  # a kill left down on purpose is no problem
    r.arm(100.0)
    run(r, 100.25, 100.5)
    locust[1].text = page(1, 5)  # the first fault's effect, seen at 100.75
    run(r, 100.75, 101.0)
    r.arm(101.0)  # a second instantaneous fault before the first one's effect is over
    run(r, 101.25, 102.75)
    assert r.spans == [(100.0, None), (101.0, None)]
    run(r, 103.0, 103.5)
    # each span ends at the first instant after its own start from which all stayed steady
    assert r.spans == [(100.0, 100.75), (101.0, 101.0)] and r.recovered_at == 101.0


def test_a_runs_watcher_reads_remote_workers_and_knows_the_lbs_in_front(
    locust: list[Metrics],
) -> None:
    """Review 16 #4: a worker in load.master.remote_workers exports failures the master does
    not: the run's watcher reads it, so its failures keep the stack unsteady."""
    remote = locust[2].url.removeprefix("http://").removesuffix("/metrics")
    topo = SimpleNamespace(
        load=SimpleNamespace(master=SimpleNamespace(remote_workers=[remote])),
        services={"lb": SimpleNamespace(backends="web"), "web": SimpleNamespace()},
    )
    plan = SimpleNamespace(instances=lambda s: [SimpleNamespace(instance=f"{s}-1")])
    own = [p.url.removeprefix("http://").removesuffix("/metrics") for p in locust[:2]]
    r = for_run(topo, plan, Stack(), FakeExporter(), own)  # type: ignore[arg-type]
    r.background = False
    assert r.urls == [p.url for p in locust] and r.lbs_in_front == {"web": ["lb-1"]}
    r.arm(0.0)
    run(r, 0.0, 3.0)
    first = r.recovered_at
    assert first is not None and first < 1
    r.arm(10.0)
    run(r, 10.0, 10.25)
    locust[2].text = page(9)  # only the remote worker saw new failures
    run(r, 10.5, 12.0)
    assert r.recovered_at is None and "client failures" in r.why
    run(r, 12.25, 13.5)
    assert r.recovered_at == 10.5
    assert r.summary() == {
        "recovered_at": r.recovered_at,
        "last_problem": r.why,
        "spans": [(0.0, first), (10.0, r.recovered_at)],
        "relapses": [],
    }
    r.stop()
