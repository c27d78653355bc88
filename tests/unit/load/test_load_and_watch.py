"""Locust command lines for each profile, and the watchers' parsing of LB log lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.load.process import LocustProcess
from harness.report.collect import step_series
from harness.spec.models import Load
from harness.watch.logs import LogWatcher, parse_ts
from tests.fakes import FakeExporter


def proc(tmp_path: Path, **load: Any) -> LocustProcess:
    spec = Load.model_validate({"locustfile": "locustfiles/session_user.py", **load})
    addrs = [f"10.213.0.1:{9000 + i}" for i in range(1 + spec.workers)]
    return LocustProcess(spec, "http://10.213.0.200", "r1", tmp_path, addrs, master_port=5599)


def test_a_plain_load_is_one_headless_locust(tmp_path: Path) -> None:
    cmd = proc(tmp_path, users=7, spawn_rate=3, duration="20s").command()
    assert cmd[1:3] == ["-m", "harness.load.locust_main"]
    assert (
        "--headless" in cmd
        and cmd[cmd.index("-u") + 1] == "7"
        and cmd[cmd.index("-t") + 1] == "20s"
    )
    assert cmd[cmd.index("-H") + 1] == "http://10.213.0.200"


def test_stages_add_the_shape_and_leave_users_to_it(tmp_path: Path) -> None:
    p = proc(tmp_path, stages=[{"duration": "5s", "users": 2}, {"duration": "10s", "users": 8}])
    cmd = p.command()
    assert cmd[cmd.index("-f") + 1].endswith(
        "session_user.py," + str(Path("harness/load/shape.py").resolve())
    )
    assert "-u" not in cmd and p.load.duration == 15 and p.load.users == 8


def test_workers_get_a_master_and_workers_pointing_at_it(tmp_path: Path) -> None:
    p = proc(tmp_path, workers=2, user_classes={"SessionReader": {"weight": 3}})
    master, worker = p.command("master"), p.command("worker")
    assert "--master" in master and master[master.index("--expect-workers") + 1] == "2"
    assert "--worker" in worker and worker[worker.index("--master-port") + 1] == "5599"
    assert master[-1] == "SessionReader"
    env = p._env("worker", p.metrics_addrs[2])
    assert (
        env["HARNESS_METRICS_ADDR"] == "10.213.0.1:9002" and env["HARNESS_LOCUST_ROLE"] == "worker"
    )
    assert env["HARNESS_USER_WEIGHTS"] == '{"SessionReader": 3}'


def test_ui_replaces_headless_with_autostart(tmp_path: Path) -> None:
    p = proc(tmp_path)
    p.ui = True
    cmd = p.command()
    assert (
        "--headless" not in cmd
        and "--autostart" in cmd
        and cmd[cmd.index("--web-host") + 1] == "127.0.0.1"
    )


def test_one_metrics_address_per_process_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocustProcess(Load(workers=2), "http://x", "r1", tmp_path, ["a:1"])


def test_haproxy_and_keepalived_lines_become_timestamped_gauges() -> None:
    g = FakeExporter()
    w = LogWatcher(None, "lb-1", g, 0)  # type: ignore[arg-type]
    w.handle(
        "2026-11-22T02:16:56.123456789Z [WARNING]  (8) : Server app/web-1 is DOWN, reason: Layer4 timeout"
    )
    w.handle(
        "2026-11-22T02:16:56.200000000Z <134>Nov 22 02:16:56 haproxy[8]: Server app/web-1 is DOWN, reason: x"
    )
    w.handle("2026-11-22T02:16:57.5Z Sun Nov 22 02:16:57 2026: (VI_1) Entering MASTER STATE")
    w.handle("not a docker timestamp: Server app/web-2 is DOWN")
    down = [s for s in g.sets if s[0] == "backend_state"]
    assert down == [
        (
            "backend_state",
            ("lb-1", "web-1", "DOWN"),
            pytest.approx(parse_ts("2026-11-22T02:16:56.123456789Z")),
        )
    ]
    assert (
        "keepalived_state",
        ("lb-1", "MASTER"),
        pytest.approx(parse_ts("2026-11-22T02:16:57.5Z")),
    ) in g.sets
    assert w.servers == {"web-1": "DOWN"}


def test_docker_timestamps_keep_sub_millisecond_precision() -> None:
    a, b = parse_ts("2026-11-22T02:16:56.000000000Z"), parse_ts("2026-11-22T02:16:56.000900000Z")
    assert b - a == pytest.approx(0.0009, abs=1e-6)


def test_step_series_keeps_changes_between_samples() -> None:
    s = step_series([[1.0, "lb-1"], [2.3, None], [2.6, "lb-2"]], 0.0, 3.0, 1.0)
    assert s == [[1.0, "lb-1"], [2.0, "lb-1"], [2.3, None], [2.6, "lb-2"], [3.0, "lb-2"]]
