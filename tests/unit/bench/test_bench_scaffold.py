"""The bench scripts' shared scaffold (bench/_common.py) and bench/run.py's split of a run's
wall time: pure functions, no Docker."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"
sys.path.insert(0, str(BENCH))

import _common  # noqa: E402
import figures  # noqa: E402
import run as bench_run  # noqa: E402


def test_mmm_and_paired_ratios() -> None:
    assert _common.mmm([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0}
    assert _common.fmt_mmm({"min": 1.0, "median": 2.0, "max": 3.0}, ".1f", " s") == (
        "2.0 s (min 1.0, max 3.0)"
    )
    assert _common.paired_ratios([2.0, 3.0, 1.0], [1.0, 0.0, 2.0]) == [2.0, 0.5]
    with pytest.raises(_common.BenchError):
        _common.mmm([])
    with pytest.raises(ValueError):  # pairs that do not pair up are a bug, not a figure
        _common.paired_ratios([1.0], [1.0, 2.0])


def test_parser_has_repeat_only_when_asked() -> None:
    assert _common.parser("x", "doc", repeat=3).parse_args([]).repeat == 3
    assert _common.parser("x", "doc", repeat=3).parse_args(["--repeat", "5"]).repeat == 5
    assert not hasattr(_common.parser("x", "doc").parse_args([]), "repeat")


JOURNAL = {
    "load_started_at": 1013.0,
    "phases": [
        {"name": "build", "started_at": 1001.0, "ended_at": 1001.5},
        {"name": "up", "started_at": 1001.5, "ended_at": 1006.0},
        {"name": "baseline", "started_at": 1006.0, "ended_at": 1010.0},
        {"name": "load", "started_at": 1012.0, "ended_at": 1055.0},
        {"name": "post-run", "started_at": 1055.0, "ended_at": 1059.0},
        {"name": "verdict", "started_at": 1059.0, "ended_at": 1059.5},
        {"name": "down", "started_at": 1059.5, "ended_at": 1061.0},
    ],
}


def test_the_steps_add_up_to_the_wall_time() -> None:
    steps = bench_run.steps(JOURNAL, 1000.0, 1062.0, 40.0)
    assert sum(steps.values()) == pytest.approx(62.0)
    assert steps["start-up (interpreter, validate, stale runs)"] == pytest.approx(1.0)
    assert steps["between phases"] == pytest.approx(2.0)  # baseline end -> load start
    assert steps["load: start (watchers, Locust up, first user)"] == pytest.approx(1.0)
    assert steps["load: tail (final scrape, rollback, release)"] == pytest.approx(2.0)
    assert steps["report, exit"] == pytest.approx(1.0)


def test_the_figure_rows_of_run_and_cold() -> None:
    runs = {
        "topology": "topologies/ha.yaml",
        "configured_load_s": 40.0,
        "runs": [{"n": n, "side": "working tree", "exit_code": 0} for n in range(3)],
        "overhead_s": {"min": 9.0, "median": 10.0, "max": 12.0},
        "step_median_s": {"up": 4.0, "load: configured duration": 40.0, "baseline": 2.0},
    }
    ((what, figure),) = figures.run(runs)
    assert "40 s of load, 3 runs" in what
    assert figure.startswith("10.0 s (min 9.0, max 12.0); largest (median): up 4.0 s, baseline")
    assert figures.run({"runs": []}) == []  # an old result file (wall time only): no row
    runs["config"] = {"compare": "abc"}  # before/after: rounds where both reached a verdict
    runs["runs"] = [
        {"n": 0, "side": "working tree", "exit_code": 0, "overhead_s": 9.0},
        {"n": 1, "side": "abc", "exit_code": 0, "overhead_s": 18.0},
        {"n": 2, "side": "abc", "exit_code": 0, "overhead_s": 20.0},
        {"n": 3, "side": "working tree", "exit_code": 2, "overhead_s": 5.0},
    ]
    runs["compare"] = {"before": {"overhead_s": {"min": 18.0, "median": 19.0, "max": 20.0}}}
    _, (what, figure) = figures.run(runs)
    assert "before (abc)" in what and figure.endswith("after/before paired 0.50")
    ((_, cold),) = figures.cold(
        {"steps": {"build": {"seconds": 100.0}, "run": {"seconds": 60.0}}, "total_s": 160.0}
    )
    assert cold == "160 s (2.7 min): build 100 s, run 60 s"
