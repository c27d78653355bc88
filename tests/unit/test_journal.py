"""The typed journal: status enums written as today's strings, records in journal.json's key
order, old journals still rendered by `harness report`, stale runs told from live ones."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import Interrupted
from harness.journal import (
    JOURNAL_NAME,
    FaultStatus,
    Journal,
    PhaseStatus,
    RunStatus,
    load_journal,
    pid_alive,
    stale_runs,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "journal_sample.json"

KEYS = [
    "harness_version",
    "run_id",
    "topology",
    "topology_file",
    "pid",
    "started_at",
    "ended_at",
    "status",
    "exit_code",
    "phases",
    "faults",
    "assertions",
    "series",
    "markers",
    "summary",
]


def test_status_values_are_the_strings_journal_json_has_always_held() -> None:
    assert [s.value for s in RunStatus] == [
        "running", "up", "passed", "failed", "inconclusive", "interrupted", "error"
    ]  # fmt: skip
    assert [s.value for s in PhaseStatus] == ["running", "completed", "interrupted", "failed"]
    assert FaultStatus.ROLLED_BACK == "rolled_back"
    assert json.dumps({"s": RunStatus.PASSED}) == '{"s": "passed"}'
    assert f"{PhaseStatus.COMPLETED}" == "completed"


def test_a_new_journal_has_the_same_keys_in_the_same_order(tmp_path: Path) -> None:
    Journal(tmp_path, "r1", "ha", "topologies/ha.yaml")
    data = json.loads((tmp_path / JOURNAL_NAME).read_text())
    assert list(data) == KEYS
    assert data["status"] == "running" and data["pid"] == os.getpid()


def test_phases_are_journaled_with_plain_status_strings(tmp_path: Path) -> None:
    j = Journal(tmp_path, "r1", "ha", "t.yaml")
    with j.phase("build") as ph:
        ph["x"] = 1
    with pytest.raises(RuntimeError), j.phase("up"):
        raise RuntimeError("docker said no\nmore")
    with pytest.raises(Interrupted), j.phase("load"):
        raise Interrupted("SIGTERM")
    phases = json.loads((tmp_path / JOURNAL_NAME).read_text())["phases"]
    assert [(p["name"], p["status"]) for p in phases] == [
        ("build", "completed"),
        ("up", "failed"),
        ("load", "interrupted"),
    ]
    assert phases[1]["error"] == "docker said no"
    assert list(phases[0]) == ["name", "started_at", "ended_at", "status", "x"]


def test_the_sample_journal_loads_and_renders_with_harness_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(FIXTURE, tmp_path / JOURNAL_NAME)
    assert load_journal(tmp_path)["run_id"] == "20261122-101500-ab12"
    assert main(["report", str(tmp_path)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "junit.xml"), str(tmp_path / "report.html")]
    assert "<svg" in (tmp_path / "report.html").read_text()
    assert "<testsuite" in (tmp_path / "junit.xml").read_text()


def test_harness_report_on_a_directory_without_journal_is_exit_3(tmp_path: Path) -> None:
    assert main(["report", str(tmp_path)]) == 3


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _journal(runs: Path, run_id: str, **data: object) -> Path:
    (runs / run_id).mkdir(parents=True)
    base = {"run_id": run_id, "topology": "ha", "status": "running", "pid": _dead_pid()}
    (runs / run_id / JOURNAL_NAME).write_text(json.dumps(base | data))
    return runs / run_id


def test_stale_runs_are_only_dead_running_runs_of_the_topology(tmp_path: Path) -> None:
    dead = _journal(tmp_path, "dead")
    _journal(tmp_path, "live", pid=os.getppid())  # a live process
    _journal(tmp_path, "mine", pid=os.getpid())  # this very harness
    _journal(tmp_path, "finished", status="passed")
    _journal(tmp_path, "other", topology="basic")
    _journal(tmp_path, "nopid", pid=None)  # no pid: nothing proves it dead
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / JOURNAL_NAME).write_text("{")
    assert stale_runs(tmp_path, "ha") == [dead]
    assert sorted(p.name for p in stale_runs(tmp_path)) == ["dead", "other"]
    assert pid_alive(os.getppid()) and not pid_alive(os.getpid()) and not pid_alive(True)
