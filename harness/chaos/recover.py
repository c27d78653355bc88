"""The crash record: undo the faults a killed harness left behind, from its journal alone.

A SIGKILLed harness runs no `finally`: a paused node stays frozen, a toxic stays on its link,
a partition chain stays in a namespace. Every fault journals, before it is injected, a `detail`
with what undoing it needs (container ids, Toxiproxy URL + proxy + toxic name, the iptables
chain), and every fault module offers `recover(kind, detail, restart_stopped)`. Undo steps are
idempotent and check the real state, so a fault journaled as `scheduled` (killed mid-inject)
or `failed` (partial inject) is undone too; `rolled_back` and `recovered` ones are skipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness import chaos
from harness.journal import pid_alive

UNDONE = ("scheduled", "injected", "failed", "rollback_failed")


def _journal_path(run: Path) -> Path:
    return run / "journal.json" if run.is_dir() else run


def recover(run_dir_or_journal: Path, restart_stopped: bool = False) -> list[str]:
    """Undo the run's faults that were never rolled back; mark them `recovered` in the journal.
    Returns one human-readable line per action (empty when there was nothing to do)."""
    path = _journal_path(Path(run_dir_or_journal))
    data: dict[str, Any] = json.loads(path.read_text())
    lines: list[str] = []
    for entry in data.get("faults", []):
        remote = (entry.get("detail") or {}).get("runtime") == "hosts"
        if entry.get("status") not in UNDONE or not (remote or entry.get("kind") in chaos.FAULTS):
            continue
        kind, detail = entry["kind"], entry.get("detail") or {}
        try:
            if remote:  # runtime: hosts: the journaled undo commands, over SSH
                from harness.remote.faults import recover as recover_on_hosts
                from harness.remote.shell import SshShell

                done = recover_on_hosts(detail, SshShell())
            else:
                done = chaos.module(kind).recover(kind, detail, restart_stopped)
        except Exception as exc:  # noqa: BLE001 - one broken entry must not stop the others
            done = [f"{kind}: could not recover ({exc.__class__.__name__}: {exc})"]
        name = entry.get("name", kind)
        lines += [f"{data.get('run_id', path.parent.name)}: {name}: {line}" for line in done]
        entry.update(status="recovered", recovered_at=time.time(), recovery=done)
    if lines:
        _save(path, data)
    return lines


def recover_all(runs_dir: Path, restart_stopped: bool = False) -> list[str]:
    """Recover every run under `runs_dir` whose journal still says `running` and whose harness
    is not alive (journals that record a `pid` are checked; others are assumed dead)."""
    lines: list[str] = []
    for journal in sorted(Path(runs_dir).glob("*/journal.json")):
        try:
            data = json.loads(journal.read_text())
        except (OSError, ValueError):
            continue
        if data.get("status") == "running" and not pid_alive(data.get("pid")):
            lines += recover(journal, restart_stopped)
    return lines


def _save(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".recover.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)
