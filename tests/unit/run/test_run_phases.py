"""The run's phases as data and its event fan-out: the order of a run, what `harness up` runs,
and what each subscriber does with a fault (no Docker: every step is replaced)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import runner
from harness.errors import InfrastructureError
from harness.run import PHASES, Events, FaultEvent, PhaseChanged, Run, Stage, stale, subscribers

REPO = Path(__file__).resolve().parents[3]


def test_the_phases_of_a_run_in_order() -> None:
    assert [p.name for p in PHASES] == [
        "validate", "build", "up", "baseline", "load", "post-run", "verdict", "down", "report"
    ]  # fmt: skip
    assert [p.stage for p in PHASES if p.stage != Stage.BODY] == [
        Stage.VALIDATE,
        Stage.CLEANUP,
        Stage.AFTER,
    ]
    assert [p.name for p in PHASES if p.bring_up] == ["build", "up", "baseline"]


def test_the_runner_module_still_exports_the_public_names() -> None:
    assert runner.Run is Run
    assert runner.fault_targets("php-fpm@web-1, web-2") == ("web-1", "web-2")
    assert callable(runner.build_images) and runner.RunResult is not None


def _fake(monkeypatch: pytest.MonkeyPatch, fail_at: str | None = None) -> list[str]:
    """Every step after validate replaced by one that records its name (and fails at one)."""
    done: list[str] = []
    for phase in PHASES:
        if phase.stage == Stage.VALIDATE:
            continue
        method = phase.method

        def step(self: Run, name: str = phase.name) -> None:
            done.append(name)
            if name == fail_at:
                raise InfrastructureError(f"{name} broke")

        monkeypatch.setattr(Run, method, step)
    monkeypatch.setattr(stale, "stale_runs", lambda runs_dir, topology: [])

    def no_docker(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a unit test reached Docker")

    monkeypatch.setattr("harness.run.core.teardown", no_docker)
    monkeypatch.setattr("harness.run.core.build_images", no_docker)
    monkeypatch.setattr("harness.run.core.create_network", no_docker)
    return done


def _run(tmp_path: Path) -> Run:
    return Run(REPO / "topologies" / "ha.yaml", runs_dir=tmp_path, say=lambda m: None)


def test_execute_runs_every_phase_then_down_then_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _fake(monkeypatch)
    run = _run(tmp_path)
    seen: list[str] = []
    run.events.subscribe(lambda e: seen.append(e.name) if isinstance(e, PhaseChanged) else None)
    result = run.execute()
    order = ["build", "up", "baseline", "load", "post-run", "verdict", "down", "report"]
    assert done == order and seen == order
    # No assertion results at all: nothing failed, nothing passed either way -> passed (all([]))
    assert (result.status, result.exit_code) == ("passed", 0)
    journal = json.loads((run.run_dir / "journal.json").read_text())
    assert journal["status"] == "passed" and journal["exit_code"] == 0


def test_an_error_stops_the_body_but_down_and_report_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = _fake(monkeypatch, fail_at="baseline")
    result = _run(tmp_path).execute()
    assert done == ["build", "up", "baseline", "down", "report"]
    assert result.status == "error" and result.exit_code == InfrastructureError.exit_code
    assert result.error == "baseline broke"


def test_bring_up_stops_after_the_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _fake(monkeypatch)
    run = Run(
        REPO / "topologies" / "ha.yaml", runs_dir=tmp_path, keep=True, say=print, judged=False
    )
    result = run.bring_up()
    assert done == ["build", "up", "baseline"]
    assert (result.status, result.exit_code) == ("up", 0)


def test_a_failed_bring_up_goes_down(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = _fake(monkeypatch, fail_at="up")
    run = Run(REPO / "topologies" / "ha.yaml", runs_dir=tmp_path, keep=True, judged=False)
    assert run.bring_up().exit_code == InfrastructureError.exit_code
    assert done == ["build", "up", "down"] and run.keep is False


def test_stale_runs_are_collected_at_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone: list[str] = []
    monkeypatch.setattr(
        stale, "stale_runs", lambda runs_dir, topology: [runs_dir / f"old-{topology}"]
    )
    monkeypatch.setattr(stale, "recover", lambda run_dir: ["web-1 unpaused"])
    monkeypatch.setattr(stale, "teardown", lambda run_id: (gone.append(run_id), (3, 1))[1])
    assert stale.collect(tmp_path, "ha") == [
        "rolled back: web-1 unpaused",
        "stale run old-ha (its harness is gone): removed 3 containers and 1 networks",
    ]
    assert gone == ["old-ha"]


class Gauge:
    def __init__(self) -> None:
        self.set_to: dict[tuple[str, ...], float] = {}

    def labels(self, *labels: str) -> Any:
        gauge = self

        class Child:
            def set(self, value: float) -> None:
                gauge.set_to[labels] = value

        return Child()


class Exporter:
    def __init__(self) -> None:
        self.fault_start, self.fault_end = Gauge(), Gauge()


class Recovery:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.expected_down: set[str] = set()
        self.removed_at: dict[str, float] = {}

    def hold(self, at: float) -> None:
        self.calls.append(("hold", at))

    def release(self, at: float) -> None:
        self.calls.append(("release", at))

    def arm(self, at: float) -> None:
        self.calls.append(("arm", at))


class Grafana:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def fault_started(self, name: str, target: str, kind: str, at: float) -> None:
        self.calls.append(("started", name, target, kind, at))

    def fault_ended(self, name: str, at: float) -> None:
        self.calls.append(("ended", name, at))


def _entry(**over: Any) -> dict[str, Any]:
    return {
        "name": "pause-web",
        "kind": "pause",
        "target": "web-1",
        "for": 5.0,
        "injected_at": 10.0,
        "rolled_back_at": 15.0,
    } | over


def test_every_subscriber_hears_a_fault_in_the_order_it_subscribed() -> None:
    events, exporter, recovery, grafana = Events(), Exporter(), Recovery(), Grafana()
    said: list[str] = []
    events.subscribe(subscribers.exporter_gauges(exporter))  # type: ignore[arg-type]
    events.subscribe(subscribers.grafana_annotations(grafana))  # type: ignore[arg-type]
    events.subscribe(subscribers.console(said.append))
    events.subscribe(subscribers.recovery_watch(recovery))  # type: ignore[arg-type]
    events.fault_notify("injected", _entry())
    events.fault_notify("rolled_back", _entry())
    assert exporter.fault_start.set_to == {("pause-web", "pause", "web-1"): 10.0}
    assert exporter.fault_end.set_to == {("pause-web", "pause", "web-1"): 15.0}
    assert grafana.calls == [
        ("started", "pause-web", "web-1", "pause", 10.0),
        ("ended", "pause-web", 15.0),
    ]
    assert said == [
        "fault injected: pause-web (pause web-1)",
        "fault rolled back: pause-web (pause web-1)",
    ]
    assert recovery.calls == [("hold", 10.0), ("release", 15.0)]  # windowed: held, not armed
    assert not recovery.expected_down


def test_an_instantaneous_fault_arms_recovery_and_marks_its_targets_down() -> None:
    events, recovery = Events(), Recovery()
    events.subscribe(subscribers.recovery_watch(recovery))  # type: ignore[arg-type]
    kill = _entry(kind="process_kill", target="php-fpm@web-1, web-2")
    kill["for"] = None
    events.fault_notify("injected", kill)
    events.emit(PhaseChanged("load"))  # ignored by fault listeners
    assert recovery.calls == [("arm", 10.0)]
    assert recovery.expected_down == {"web-1", "web-2"}
    assert recovery.removed_at == {"web-1": 10.0, "web-2": 10.0}
    assert FaultEvent("injected", kill).at == 10.0 and not FaultEvent("injected", kill).windowed
