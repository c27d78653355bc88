"""The fault schedule: journal before inject, rollback at window end, always roll back."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness import chaos
from harness.chaos.schedule import Schedule, occurrences
from harness.journal import Journal
from harness.spec.models import ChaosStep

CALLS: list[tuple[str, str, float]] = []


class FakeFault:
    def __init__(self, params: Any, ctx: Any, kind: str = "kill") -> None:
        self.kind, self.target, self.detail = kind, params.target, {}
        self.journal_path: Path = ctx

    def inject(self) -> None:
        on_disk = json.loads(self.journal_path.read_text())
        assert on_disk["faults"][-1]["status"] == "scheduled"  # journaled before it exists
        if self.target == "boom":
            raise RuntimeError("inject failed")
        CALLS.append(("inject", self.target, time.time()))

    def rollback(self) -> None:
        CALLS.append(("rollback", self.target, time.time()))


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Journal:
    CALLS.clear()
    monkeypatch.setattr(chaos, "make", lambda kind, params, ctx: FakeFault(params, ctx))
    return Journal(tmp_path, "r1", "t", "t.yaml")


def step(name: str, at: float, target: str, for_: float | None = None, **kw: Any) -> ChaosStep:
    data = {"name": name, "at": at, "fault": {"pause": target}, **kw}
    if for_ is not None:
        data["for"] = for_
    return ChaosStep.model_validate(data)


def test_faults_fire_in_order_and_windows_roll_back_on_time(journal: Journal) -> None:
    steps = [step("b", 0.3, "web-2", for_=0.2), step("a", 0.1, "web-1")]
    sched = Schedule(steps, journal.path, journal)  # type: ignore[arg-type]
    t0 = time.time()
    sched.run(t0, t0 + 0.8)
    assert [(c[0], c[1]) for c in CALLS] == [("inject", "web-1"), ("inject", "web-2"), ("rollback", "web-2")]
    assert CALLS[0][2] - t0 == pytest.approx(0.1, abs=0.05)
    assert CALLS[2][2] - CALLS[1][2] == pytest.approx(0.2, abs=0.05)
    sched.rollback_all()  # the instantaneous one is rolled back at the end
    assert CALLS[-1][:2] == ("rollback", "web-1")
    statuses = {f["name"]: f["status"] for f in journal["faults"]}
    assert statuses == {"a": "rolled_back", "b": "rolled_back"}


def test_an_exception_mid_schedule_still_lets_everything_roll_back(journal: Journal) -> None:
    steps = [step("a", 0.0, "web-1", for_=5), step("b", 0.05, "boom")]
    sched = Schedule(steps, journal.path, journal)  # type: ignore[arg-type]
    t0 = time.time()
    with pytest.raises(RuntimeError):
        sched.run(t0, t0 + 1)
    sched.rollback_all()
    assert ("rollback", "web-1") in [(c[0], c[1]) for c in CALLS]
    failed = next(f for f in journal["faults"] if f["name"] == "b")
    assert failed["status"] == "failed" and "inject failed" in failed["error"]


def test_an_interrupt_during_a_window_rolls_back(journal: Journal) -> None:
    sched = Schedule([step("a", 0.0, "web-1", for_=10)], journal.path, journal)  # type: ignore[arg-type]

    def tick() -> None:
        if CALLS:
            raise KeyboardInterrupt

    t0 = time.time()
    with pytest.raises(KeyboardInterrupt):
        sched.run(t0, t0 + 5, tick)
    sched.rollback_all()
    assert [c[0] for c in CALLS] == ["inject", "rollback"]


def test_repeat_expands_into_named_occurrences() -> None:
    s = step("blip", 5, "web-1", for_=2, repeat=3)
    assert [(at, name) for at, _, name in occurrences([s])] == [(5, "blip"), (12, "blip #2"), (19, "blip #3")]
    s = step("blip", 5, "web-1", repeat=2, every="10s")
    assert [at for at, _, _ in occurrences([s])] == [5, 15]
