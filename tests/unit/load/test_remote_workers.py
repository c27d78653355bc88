"""Load from many machines, without Docker: `load.master` and `load.min_workers` validate with a
one-line error, the master's command line follows them, a run judges which workers dropped out
(against a real Prometheus over synthetic series), and the verdict no longer requires a worker
that dropped out while `min_workers` held."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfrastructureError, SpecError
from harness.load import worker
from harness.load.process import LocustProcess
from harness.run.load import worker_dropouts
from harness.spec.loader import load_topology
from harness.spec.models import Load
from harness.verdict import fresh
from tests.promlab import BASE as T0
from tests.promlab import PromLab

REPO = Path(__file__).resolve().parents[3]
LOCUSTFILE = str(REPO / "locustfiles" / "session_user.py")

TOPO = """\
version: 1
name: remote
services:
  lb: {{kind: haproxy, backends: web}}
  web: {{kind: web, sessions: files}}
  db: {{kind: mariadb}}
load:
  locustfile: {locustfile}
{load}
assertions:
  - error_budget: {{max_error_ratio: 0.01}}
"""


def load_text(tmp_path: Path, load: str) -> Any:
    path = tmp_path / "t.yaml"
    path.write_text(TOPO.format(locustfile=LOCUSTFILE, load=load))
    return load_topology(path)


def problems(tmp_path: Path, load: str) -> str:
    with pytest.raises(SpecError) as e:
        load_text(tmp_path, load)
    return "\n".join(e.value.problems)


def test_master_bind_port_and_remote_workers_load(tmp_path: Path) -> None:
    topo = load_text(
        tmp_path,
        "  workers: 1\n  master: {bind: 10.9.0.1, port: 5599, remote_workers: [10.9.0.2:9646]}\n"
        "  min_workers: 1",
    )
    assert topo.load.master.bind == "10.9.0.1" and topo.load.master.port == 5599
    assert topo.load.total_workers == 2 and topo.load.min_workers == 1


@pytest.mark.parametrize(
    ("load", "line", "needle"),
    [
        ("  master: {bind: 10.9.0.300}", 9, "load.master.bind: '10.9.0.300' is not an IPv4"),
        (
            "  master: {remote_workers: [10.9.0.2]}",
            9,
            "remote_workers[0]: '10.9.0.2' is not HOST:PORT",
        ),
        ("  master: {port: 70000}", 9, "load.master.port:"),
        (
            "  master: {remote_workers: [10.9.0.2:9646]}\n  min_workers: 2",
            10,
            "load.min_workers: 2 is",
        ),
        ("  master: {bnd: 0.0.0.0}", 9, "did you mean 'bind'"),
    ],
)
def test_bad_master_settings_name_file_line_field_and_fix(
    tmp_path: Path, load: str, line: int, needle: str
) -> None:
    text = problems(tmp_path, load)
    assert f"t.yaml:{line}:" in text and needle in text, text
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text


def lp(tmp_path: Path, **load: Any) -> LocustProcess:
    spec = Load(locustfile=LOCUSTFILE, users=4, **load)
    addrs = [f"127.0.0.1:{9000 + i}" for i in range(1 + spec.workers)]
    return LocustProcess(spec, "http://10.0.0.9", "r1", tmp_path, addrs, master_port=5557)


def flag(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_the_master_binds_where_load_master_says_and_waits_for_every_worker(
    tmp_path: Path,
) -> None:
    p = lp(
        tmp_path,
        workers=2,
        master={"bind": "0.0.0.0", "port": 5601, "remote_workers": ["10.9.0.2:9646"]},
    )
    master = p.command("master")
    assert flag(master, "--master-bind-host") == "0.0.0.0"
    assert flag(master, "--master-bind-port") == "5601"
    assert flag(master, "--expect-workers") == "3"  # 2 local + 1 remote
    local = p.command("worker")  # local workers reach a master listening everywhere on loopback
    assert flag(local, "--master-host") == "127.0.0.1" and flag(local, "--master-port") == "5601"


def test_defaults_keep_the_master_on_loopback(tmp_path: Path) -> None:
    p = lp(tmp_path, workers=1)
    assert flag(p.command("master"), "--master-bind-host") == "127.0.0.1"
    assert flag(p.command("master"), "--master-bind-port") == "5557"


def test_remote_workers_alone_make_the_load_distributed(tmp_path: Path) -> None:
    p = lp(tmp_path, master={"bind": "10.9.0.1", "remote_workers": ["10.9.0.2:9646"]})
    assert p.load.distributed and "--master" in p.command("master")


class _Proc:
    def __init__(self, code: int | None) -> None:
        self.returncode = code

    def poll(self) -> int | None:
        return self.returncode


def test_a_dead_local_worker_stops_the_run_only_below_min_workers(tmp_path: Path) -> None:
    strict = lp(tmp_path, workers=2)
    strict.procs = [_Proc(None), _Proc(None), _Proc(-9)]  # type: ignore[list-item]
    assert not strict.running()
    assert "locust-worker-2" in strict.why_not_running()
    assert "min_workers 2" in strict.why_not_running()
    lenient = lp(tmp_path, workers=2, min_workers=1)
    lenient.procs = [_Proc(None), _Proc(None), _Proc(-9)]  # type: ignore[list-item]
    assert lenient.running() and lenient.dead_local_workers() == ["locust-worker-2"]
    lenient.procs = [_Proc(1), _Proc(None), _Proc(None)]  # type: ignore[list-item]
    assert not lenient.running() and "Locust exited early" in lenient.why_not_running()


def lab_with_workers(promlab: PromLab, remote_up: list[float], connected: list[float]) -> None:
    t = promlab.scrape_times(T0, T0 + 20)
    promlab.scrape_target("locust", "locust", "r1", [(x, 1.0) for x in t])
    promlab.scrape_target("locust", "locust-worker-1", "r1", [(x, 1.0) for x in t])
    promlab.scrape_target(
        "locust", "locust-remote-1", "r1", [(x, v) for x, v in zip(t, remote_up, strict=False)]
    )
    promlab.gauge(
        "harness_locust_workers_connected",
        {"run": "r1", "instance": "locust", "job": "locust"},
        list(zip(t, connected, strict=False)),
    )
    promlab.start()


def remote_lp(tmp_path: Path, min_workers: int | None) -> LocustProcess:
    p = lp(
        tmp_path,
        workers=1,
        min_workers=min_workers,
        master={"bind": "10.9.0.1", "remote_workers": ["10.9.0.2:9646"]},
    )
    p.procs = [_Proc(None), _Proc(None)]  # type: ignore[list-item]
    return p


def test_a_worker_gone_mid_run_is_inconclusive_unless_min_workers_holds(
    tmp_path: Path, promlab: PromLab
) -> None:
    # the remote worker's scrapes fail from 12 s on; the master hears one worker from 15 s on
    lab_with_workers(promlab, [1.0] * 12 + [0.0] * 9, [2.0] * 15 + [1.0] * 6)
    with pytest.raises(InfrastructureError) as e:
        worker_dropouts(promlab.prom, remote_lp(tmp_path, None), "r1", T0, T0 + 20)
    msg = str(e.value)
    assert "1 of 2 Locust worker(s) dropped out mid-run" in msg and "locust-remote-1" in msg
    assert "below load.min_workers 2" in msg
    report = worker_dropouts(promlab.prom, remote_lp(tmp_path, 1), "r1", T0, T0 + 20)
    assert report["dropped"] == ["locust-remote-1"] and report["alive"] == 1
    assert report["lowest_connected"] == 1.0


def test_workers_that_all_stayed_are_not_reported(tmp_path: Path, promlab: PromLab) -> None:
    lab_with_workers(promlab, [1.0] * 21, [2.0] * 21)
    report = worker_dropouts(promlab.prom, remote_lp(tmp_path, None), "r1", T0, T0 + 20)
    assert report["dropped"] == [] and report["alive"] == 2


def test_the_master_losing_a_worker_counts_even_while_its_metrics_answer(
    tmp_path: Path, promlab: PromLab
) -> None:
    # partitioned from the master but still scraped: the master's count is what tells
    lab_with_workers(promlab, [1.0] * 21, [2.0] * 10 + [1.0] * 11)
    with pytest.raises(InfrastructureError, match="at the lowest 1 connected"):
        worker_dropouts(promlab.prom, remote_lp(tmp_path, None), "r1", T0, T0 + 20)


def test_the_verdict_stops_requiring_a_worker_that_dropped_out() -> None:
    every = fresh.locust(2)
    assert every.expected == 3
    kept = fresh.locust(2, ("locust-remote-1",))
    assert kept.expected == 2
    live = kept.instance.split("|")
    assert "locust-remote-1" not in live and {"locust", "locust-worker-1"} <= set(live)


def test_the_freshness_pattern_covers_remote_workers() -> None:
    import re

    assert re.fullmatch(fresh.LOCUST, "locust-remote-3")
    assert re.fullmatch(fresh.LOCUST, "locust-worker-2") and re.fullmatch(fresh.LOCUST, "locust")


@pytest.mark.parametrize(
    ("value", "want"),
    [("10.0.0.5", ("10.0.0.5", 5557)), ("10.0.0.5:6000", ("10.0.0.5", 6000))],
)
def test_worker_master_address(value: str, want: tuple[str, int]) -> None:
    assert worker.parse_master(value) == want


def test_worker_command_joins_the_master_with_the_harness_entry_point() -> None:
    cmd = worker.command("10.0.0.5", 6000, "/x/locustfile.py")
    assert cmd[1:3] == ["-m", "harness.load.locust_main"] and "--worker" in cmd
    assert flag(cmd, "--master-host") == "10.0.0.5" and flag(cmd, "--master-port") == "6000"
    env = worker.environment("10.0.0.7:9646", 3, None)
    assert env["HARNESS_METRICS_ADDR"] == "10.0.0.7:9646" and env["HARNESS_LOCUST_ROLE"] == "worker"
    assert env["HARNESS_RELEASE_SCRAPES"] == "3" and "HARNESS_RELEASE_FILE" not in env


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--master", "10.0.0.5:99999", LOCUSTFILE], "--master '10.0.0.5:99999'"),
        (["--master", "10.0.0.5", "--metrics", "nowhere", LOCUSTFILE], "--metrics 'nowhere'"),
        (["--master", "10.0.0.5", "/no/such/locustfile.py"], "no such locustfile"),
    ],
)
def test_worker_bad_input_is_one_line_and_exit_3(args: list[str], needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "worker", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 3, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr
