"""Issue 15, a run's overhead beyond its load: the load's end is reckoned (Prometheus's final
scrape, Locust released) in a thread while the faults are rolled back and post-run measures;
post-run's testinfra modules start while that scrape is awaited, the writes are read only once
Locust is released, and faults rolled back after the load keep their windows until its end.
Locust's processes start up during the baseline and wait for their go file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.errors import InfrastructureError
from harness.journal import Journal
from harness.load import gate
from harness.load.process import LocustProcess
from harness.observe.exporter import HarnessExporter
from harness.run import judge
from harness.run import load as load_steps
from harness.spec.models import Load, Topology
from harness.verdict.windows import Timeline
from tests.fakes import FakeProm

RUN, T0, END = "r1", 1_700_000_000.0, 1_700_000_040.4


def topology(assertions: list[dict[str, Any]], chaos: list[dict[str, Any]] = ()) -> Topology:  # type: ignore[assignment]
    return Topology.model_validate(
        {
            "version": 1,
            "name": "t",
            "services": {
                "lb": {"kind": "haproxy", "backends": "web"},
                "web": {"kind": "web", "replicas": 2},
                "redis": {"kind": "redis"},
                "db": {"kind": "mariadb"},
            },
            "load": {"duration": "40s"},
            "chaos": list(chaos),
            "assertions": assertions,
        }
    )


class SlowReckoning:
    """Its final scrape ends only once `go` is set (or 5 s passed: a post-run that waited
    for it before measuring)."""

    def __init__(self) -> None:
        self.go, self.done = threading.Event(), threading.Event()

    def result(self) -> Timeline:
        if not self.go.wait(5):
            raise AssertionError("post-run awaited the final scrape before starting testinfra")
        self.done.set()
        return Timeline(T0, END, {})


def test_post_run_measures_while_the_final_scrape_is_awaited(tmp_path: Path) -> None:
    topo = topology(
        [
            {"no_lost_writes": {}},
            {"name": "web ok", "testinfra": {"module": "checks/t.py", "hosts": "web"}},
        ]
    )
    exporter = HarnessExporter("127.0.0.1", 0)
    stamp = "harness_post_run_timestamp_seconds"
    reckoning = SlowReckoning()
    order: list[str] = []

    def testinfra(spec: Any, index: int) -> tuple[int, int]:
        order.append("testinfra")
        reckoning.go.set()  # the final scrape ends only now: testinfra started before it did
        return 3, 0

    def writes() -> tuple[int, int, list[str]]:
        order.append("writes after release" if reckoning.done.is_set() else "writes too early")
        return 10, 0, []

    run = SimpleNamespace(
        run_id=RUN,
        topo=topo,
        prom=FakeProm({stamp: lambda q: exporter.registry.get_sample_value(stamp)}),
        exporter=exporter,
        timeline=None,
        reckoning=reckoning,
        journal=Journal(tmp_path, RUN, "t", str(tmp_path / "t.yaml")),
        check_testinfra=testinfra,
        check_writes=writes,
    )
    try:
        judge.post_run(run)
    finally:
        exporter.close()
    assert order == ["testinfra", "writes after release"]
    assert run.timeline.load_end == END and run.timeline.post_at is not None
    [phase] = run.journal["phases"]
    assert set(phase["timings"]) == {
        "final scrape",
        "writes",
        "testinfra checks/t.py on web",
        "seen by Prometheus",
    }
    assert phase["timings"]["final scrape"] >= phase["timings"]["testinfra checks/t.py on web"]


class FailedReckoning:
    def result(self) -> Timeline:
        raise InfrastructureError("Locust's final figures never reached Prometheus: down")


def test_a_failed_final_scrape_is_said_without_awaiting_the_testinfra_modules(
    tmp_path: Path,
) -> None:
    """Inconclusive at once: the running module is not awaited, the queued ones not started."""
    checks = [
        {"name": f"ok {i}", "testinfra": {"module": f"checks/t{i}.py", "hosts": "web"}}
        for i in range(6)
    ]
    release, started = threading.Event(), []

    def testinfra(spec: Any, index: int) -> tuple[int, int]:
        started.append(index)
        release.wait(10)  # a pytest process that takes its time
        return 1, 0

    run = SimpleNamespace(
        run_id=RUN,
        topo=topology(checks),
        prom=FakeProm({}),
        exporter=SimpleNamespace(),
        timeline=None,
        reckoning=FailedReckoning(),
        journal=Journal(tmp_path, RUN, "t", str(tmp_path / "t.yaml")),
        check_testinfra=testinfra,
    )
    t = time.monotonic()
    try:
        with pytest.raises(InfrastructureError, match="final figures never reached"):
            judge.post_run(run)
        assert time.monotonic() - t < 2  # not the modules' 10 s
        time.sleep(0.2)
        assert sorted(started) == [0, 1, 2, 3]  # the two queued ones were cancelled
    finally:
        release.set()


def test_without_post_run_measurements_the_verdict_awaits_the_final_scrape() -> None:
    reckoning = SlowReckoning()
    reckoning.go.set()
    run = SimpleNamespace(timeline=None, reckoning=reckoning)
    assert judge.timeline_of(run).load_end == END and run.timeline.load_end == END
    given = Timeline(T0, END + 1, {})  # a hosts run reckons its load's end itself
    assert judge.timeline_of(SimpleNamespace(timeline=given)) is given


class FakeLocust:
    def __init__(self, finished: bool = True) -> None:
        self.load = Load(duration="40s")
        self.min_workers = 0
        self.finished = finished
        self.calls: list[str] = []

    def wait_finished(self) -> bool:
        self.calls.append("wait_finished")
        return self.finished

    def dead_local_workers(self) -> list[str]:
        return []

    def release(self) -> None:
        self.calls.append("release")

    def log_tail(self) -> str:
        return "the end"


class ScrapeProm(FakeProm):
    def targets_up(self) -> dict[str, bool]:
        return {"locust": True}


def final_scrape_prom(end: float | None) -> FakeProm:
    """Prometheus as the final scrape asks it: one Locust process seen finished at `end`."""
    return ScrapeProm(
        {
            "count(harness_load_finished_timestamp_seconds": None if end is None else 1.0,
            "max(timestamp(": end,
            "count(timestamp(": 1.0,  # scraped again at or after it
        }
    )


def faulted_journal(tmp_path: Path) -> Journal:
    journal = Journal(tmp_path, RUN, "t", str(tmp_path / "t.yaml"))
    for name, at, back in (("early", 5.0, 11.0), ("late", 30.0, 40.2)):
        journal.fault(
            {
                "name": name,
                "kind": "pause",
                "target": "web-1",
                "for": 6.0 if name == "early" else 20.0,
                "injected_at": T0 + at,
                "rolled_back_at": T0 + back,
            }
        )
    return journal


def test_a_fault_rolled_back_when_the_load_ended_keeps_its_window_until_the_end(
    tmp_path: Path,
) -> None:
    chaos = [
        {"name": "early", "at": "5s", "for": "6s", "fault": {"pause": "web-1"}},
        {"name": "late", "at": "30s", "for": "20s", "fault": {"pause": "web-1"}},
    ]
    topo = topology([{"error_budget": {"max_error_ratio": 0.01}}], chaos)
    locust = FakeLocust()
    reckoning = load_steps.Reckoning(
        faulted_journal(tmp_path), final_scrape_prom(END), locust, topo, T0, print
    )  # type: ignore[arg-type]
    reckoning.start()
    assert locust.calls[0] == "wait_finished"  # Locust stopped before anything is rolled back
    reckoning.ended_by_load = {"late"}  # rolled back at T0 + 40.2, before the final scrape
    timeline = reckoning.result()
    assert locust.calls == ["wait_finished", "release"]
    assert timeline.load_end == END
    assert timeline.faults["late"].end == END  # the last requests count in its window
    assert timeline.faults["early"].end == T0 + 11.0
    assert [(s.start, s.end) for s in timeline.spans("calm")] == [
        (T0, T0 + 5.0),
        (T0 + 11.0, T0 + 30.0),
    ]


def test_a_final_scrape_that_never_comes_is_raised_by_result(tmp_path: Path) -> None:
    topo = topology([{"error_budget": {"max_error_ratio": 0.01}}])
    locust = FakeLocust(finished=False)
    reckoning = load_steps.Reckoning(
        faulted_journal(tmp_path), final_scrape_prom(None), locust, topo, T0, print
    )  # type: ignore[arg-type]
    with pytest.raises(InfrastructureError, match="final figures never reached Prometheus"):
        reckoning.start().result()
    assert "release" not in locust.calls


class Metrics(BaseHTTPRequestHandler):
    """A Locust process's metrics endpoint: `finished` is its finish gauge."""

    finished = 0.0

    def do_GET(self) -> None:
        body = f"harness_load_finished_timestamp_seconds {self.server.finished}\n".encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_wait_finished_reads_each_process_and_waits_no_more_for_one_that_exited(
    tmp_path: Path,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    server.finished = 0.0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{server.server_address[1]}"
    p = LocustProcess(Load(), "http://x", RUN, tmp_path, [addr])
    p.procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])]
    try:
        t = time.monotonic()
        assert p.wait_finished(timeout=0.4) is False  # still running its test
        assert time.monotonic() - t >= 0.4
        threading.Timer(0.2, lambda: setattr(server, "finished", T0)).start()
        assert p.wait_finished(timeout=5) is True
        server.finished = 0.0  # type: ignore[attr-defined]
        p.procs[0].kill()
        p.procs[0].wait()
        t = time.monotonic()  # an exited process sends nothing more
        assert p.wait_finished(timeout=5) is True and time.monotonic() - t < 1
    finally:
        server.shutdown()
        p.stop()


def test_a_dead_worker_does_not_end_the_wait_for_a_master_still_sending(tmp_path: Path) -> None:
    """A worker exited mid-run (allowed by `load.min_workers`): the master, still in its test,
    is waited for (it used to be given up on at once, and the faults rolled back under load)."""
    master = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    master.finished = 0.0  # type: ignore[attr-defined]
    threading.Thread(target=master.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{master.server_address[1]}"
    p = LocustProcess(Load(workers=1, min_workers=0), "http://x", RUN, tmp_path, [addr, "x:1"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    p.procs = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]), dead]
    try:
        t = time.monotonic()
        assert p.wait_finished(timeout=0.6) is False
        assert time.monotonic() - t >= 0.6  # waited for the master, not given up at once
        threading.Timer(0.3, lambda: setattr(master, "finished", T0)).start()
        t = time.monotonic()
        assert p.wait_finished(timeout=5) is True
        assert 0.25 <= time.monotonic() - t < 2  # until the master reported its stop
    finally:
        master.shutdown()
        p.stop()


def test_without_every_stop_reported_faults_roll_back_after_the_final_scrape(
    tmp_path: Path,
) -> None:
    topo = topology([{"error_budget": {"max_error_ratio": 0.01}}])
    for finished, order in (
        (True, ["wait_finished", "rollback", "release"]),
        (False, ["wait_finished", "release", "rollback"]),
    ):
        locust, said = FakeLocust(finished=finished), []
        gate_scrape = threading.Event()
        prom = final_scrape_prom(END)
        asked = prom.scalar

        def scalar(q: str, asked: Any = asked, gate: threading.Event = gate_scrape) -> Any:
            gate.wait(0.5)  # a final scrape that takes a while
            return asked(q)

        prom.scalar = scalar  # type: ignore[method-assign]
        journal = faulted_journal(tmp_path)
        timeline = load_steps.reckon(
            journal,
            prom,
            locust,
            topo,
            T0,
            said.append,
            before_release=lambda locust=locust: locust.calls.append("rollback"),
        )  # type: ignore[arg-type]
        assert locust.calls == order and timeline.load_end == END
        assert journal["workers"]["stop_reported"] is finished
        assert any("did not report its stop" in m for m in said) is not finished


def test_a_standby_locust_waits_for_its_go_file_and_gives_up_without_its_parent(
    tmp_path: Path,
) -> None:
    go = tmp_path / "locust.go"
    threading.Timer(0.2, go.touch).start()
    t = time.monotonic()
    assert gate.wait_for_go(str(go), os.getppid(), 5) is True
    assert time.monotonic() - t >= 0.15
    assert gate.wait_for_go(str(tmp_path / "never"), os.getppid(), 0.1) is False
    assert gate.wait_for_go(str(tmp_path / "never"), -1, 5) is False  # parent gone


def test_prestarted_processes_start_on_go_instead_of_being_spawned_again(tmp_path: Path) -> None:
    locustfile = tmp_path / "lf.py"
    locustfile.write_text("")
    p = LocustProcess(Load(locustfile=str(locustfile)), "http://x", RUN, tmp_path, ["a:1"])
    spawned: list[str] = []
    p._spawn = lambda entry: (spawned.append(entry), p.procs.append(None))  # type: ignore[assignment,func-returns-value,arg-type]
    p.prestart()
    assert spawned == ["harness.load.standby"] and not (tmp_path / "locust.go").exists()
    p.start()
    assert spawned == ["harness.load.standby"] and (tmp_path / "locust.go").exists()
    env = p._env("local", "a:1")
    assert env["HARNESS_GO_FILE"] == str(tmp_path / "locust.go")
    assert env["HARNESS_PARENT_PID"] == str(os.getpid())
    cold = LocustProcess(Load(locustfile=str(locustfile)), "http://x", RUN, tmp_path, ["a:1"])
    cold._spawn = lambda entry: spawned.append(entry)  # type: ignore[assignment,func-returns-value]
    cold.start()
    assert spawned[-1] == "harness.load.locust_main"
