"""bench/figures.py's cold row: each step with what it used (base tool, installer, build jobs),
and older result files (before those were recorded) still render."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))

import figures  # noqa: E402


def test_the_cold_row_says_what_each_step_used() -> None:
    steps = {
        "venv": {"seconds": 11.4, "installer": "uv"},
        "base": {"seconds": 20.6, "tool": "mmdebstrap"},
        "build": {"seconds": 88.3, "jobs": "4"},
        "run": {"seconds": 56.0, "exit_code": 0, "verdict": "passed"},
    }
    ((what, figure),) = figures.cold({"steps": steps, "total_s": 176.3, "skipped": ["apt"]})
    assert "bench/cold.py" in what
    assert figure == (
        "176 s (2.9 min): venv 11 s (uv), base 21 s (mmdebstrap), build 88 s (4 at once), "
        "run 56 s (not timed: apt)"
    )


def test_default_jobs_and_old_result_files_add_nothing() -> None:
    steps = {"debootstrap": {"seconds": 28.0}, "build": {"seconds": 93.2, "jobs": "default"}}
    ((_, figure),) = figures.cold({"steps": steps, "total_s": 121.2})
    assert figure == "121 s (2.0 min): debootstrap 28 s, build 93 s"


def test_the_table_takes_the_latest_complete_cold_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = {"steps": {"build": {"seconds": 80.0}}, "total_s": 80.0, "skipped": []}
    part = {"steps": {"venv": {"seconds": 9.0}}, "total_s": 9.0, "skipped": ["build"]}
    (tmp_path / "cold-20261206-100000.json").write_text(json.dumps(full))
    (tmp_path / "cold-20261206-110000.json").write_text(json.dumps(part))
    monkeypatch.setattr(figures, "RESULTS", tmp_path)
    (row,) = [line for line in figures.table().splitlines() if "cold" in line]
    assert "80 s (1.3 min): build 80 s" in row and "cold-20261206-100000.json" in row
