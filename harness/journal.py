"""The run journal: every phase, fault and assertion with timestamps (and the PromQL used),
written to runs/<run-id>/journal.json after every change so that an interrupted or killed run
still leaves a truthful record behind.

This module is the one place the journal's keys are named: the typed records below (run,
phase, fault, assertion, marker) and their status enums, whose values are the strings written
to journal.json. `harness report` and the stale-run collector read journals through
:func:`load_journal` and :func:`stale_runs`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

from harness import __version__
from harness.errors import Interrupted

JOURNAL_NAME = "journal.json"


class RunStatus(StrEnum):
    RUNNING = "running"
    UP = "up"  # `harness up`: the stack was left running
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    INTERRUPTED = "interrupted"
    ERROR = "error"


class PhaseStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


class FaultStatus(StrEnum):
    SCHEDULED = "scheduled"
    INJECTED = "injected"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    RECOVERED = "recovered"


class AssertionStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    INCONCLUSIVE = "inconclusive"
    SKIPPED = "skipped"  # not written by the verdict today; reports render it


class PhaseRecord(TypedDict):
    name: str
    started_at: float
    ended_at: float | None
    status: str  # a PhaseStatus value
    error: NotRequired[str]


FaultRecord = TypedDict(
    "FaultRecord",
    {
        "name": str,
        "kind": str,
        "target": str,  # `web-1, web-2`, `php-fpm@web-1`
        "at": float,
        "for": float | None,  # set for a windowed fault, None for an instantaneous one
        "injected_at": float | None,
        "rolled_back_at": float | None,
        "status": str,  # a FaultStatus value
        "detail": dict[str, Any],  # what undoing it needs (`harness gc`)
        "before": dict[str, Any],  # state just before it (VIP holders)
        "error": NotRequired[str],
        "recovered_at": NotRequired[float],
        "recovery": NotRequired[list[str]],
    },
)


class AssertionRecord(TypedDict):
    """verdict.query.Result.as_dict()."""

    name: str
    kind: str
    during: str
    status: str  # an AssertionStatus value
    measured: float | str | None  # "+Inf" when infinite
    bound: float | None
    unit: str
    promql: str
    message: str
    extra: dict[str, Any]


class MarkerRecord(TypedDict):
    t: float
    label: str
    kind: str  # ejection, failover, recovery


class RecoveryRecord(TypedDict):
    recovered_at: float | None
    last_problem: str | None
    spans: list[Any]
    relapses: Any


class RunRecord(TypedDict):
    harness_version: str
    run_id: str
    topology: str
    topology_file: str
    pid: NotRequired[int]  # lets `harness gc` tell a dead harness's journal from a live one
    started_at: float
    ended_at: float | None
    status: str  # a RunStatus value
    exit_code: int | None
    phases: list[PhaseRecord]
    faults: list[FaultRecord]
    assertions: list[AssertionRecord]
    series: dict[str, Any]
    markers: list[MarkerRecord]
    summary: dict[str, Any]
    load_started_at: NotRequired[float]
    load_ended_at: NotRequired[float]
    recovery: NotRequired[RecoveryRecord]
    watch: NotRequired[dict[str, Any]]
    compare: NotRequired[dict[str, Any]]
    error: NotRequired[str]


def new_run(run_id: str, topology: str, topology_file: str) -> RunRecord:
    """A fresh run record, its keys in journal.json's order."""
    return {
        "harness_version": __version__,
        "run_id": run_id,
        "topology": topology,
        "topology_file": topology_file,
        "pid": os.getpid(),
        "started_at": time.time(),
        "ended_at": None,
        "status": RunStatus.RUNNING,
        "exit_code": None,
        "phases": [],
        "faults": [],
        "assertions": [],
        "series": {},
        "markers": [],
        "summary": {},
    }


class Journal:
    def __init__(self, run_dir: Path, run_id: str, topology: str, topology_file: str) -> None:
        self.path = run_dir / JOURNAL_NAME
        self.data: dict[str, Any] = cast(dict[str, Any], new_run(run_id, topology, topology_file))
        self.save()

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    @contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        record: PhaseRecord = {
            "name": name,
            "started_at": time.time(),
            "ended_at": None,
            "status": PhaseStatus.RUNNING,
        }
        entry = cast(dict[str, Any], record)
        self.data["phases"].append(entry)
        self.save()
        try:
            yield entry
            entry["status"] = PhaseStatus.COMPLETED
        except (Interrupted, KeyboardInterrupt):
            entry["status"] = PhaseStatus.INTERRUPTED
            raise
        except BaseException as exc:
            entry["status"] = PhaseStatus.FAILED
            entry["error"] = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            raise
        finally:
            entry["ended_at"] = time.time()
            self.save()

    def fault(self, entry: dict[str, Any]) -> dict[str, Any]:
        self.data["faults"].append(entry)
        self.save()
        return entry

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str))
        tmp.replace(self.path)


# ---------------------------------------------------------------------- reading journals


def load_journal(run_dir: str | Path) -> RunRecord:
    """Read ``run_dir/journal.json``; clear errors for a missing or broken journal. Journals
    written by this version (and earlier ones without `pid`) read the same."""
    path = Path(run_dir) / JOURNAL_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no run journal at {path}: expected a run directory such as runs/<run-id>/ "
            f"containing {JOURNAL_NAME}"
        )
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"run journal {path} is not valid JSON: {exc}") from exc
    if not isinstance(journal, dict):
        raise ValueError(
            f"run journal {path} must hold a JSON object, not {type(journal).__name__}"
        )
    return cast(RunRecord, journal)


def pid_alive(pid: Any) -> bool:
    """Whether the harness process that wrote a journal still runs (this process counts as
    dead: its own journals are not stale)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_runs(runs_dir: Path, topology: str | None = None) -> list[Path]:
    """The run directories under `runs_dir` whose journal still says `running` but whose
    harness (the journal's `pid`) is gone; only those of `topology` when given. A journal
    without a pid is never stale here: only a pid known dead proves the run abandoned."""
    found = []
    for path in sorted(Path(runs_dir).glob(f"*/{JOURNAL_NAME}")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("status") != RunStatus.RUNNING:
            continue
        if topology is not None and data.get("topology") != topology:
            continue
        pid = data.get("pid")
        if isinstance(pid, int) and pid != os.getpid() and not pid_alive(pid):
            found.append(path.parent)
    return found
