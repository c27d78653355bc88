"""The run journal: every phase, fault and assertion with timestamps (and the PromQL used),
written to runs/<run-id>/journal.json after every change so that an interrupted or killed run
still leaves a truthful record behind."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import Interrupted


class Journal:
    def __init__(self, run_dir: Path, run_id: str, topology: str, topology_file: str) -> None:
        self.path = run_dir / "journal.json"
        self.data: dict[str, Any] = {
            "harness_version": __version__,
            "run_id": run_id,
            "topology": topology,
            "topology_file": topology_file,
            "pid": os.getpid(),  # lets `harness gc` tell a dead harness's journal from a live one
            "started_at": time.time(),
            "ended_at": None,
            "status": "running",
            "exit_code": None,
            "phases": [],
            "faults": [],
            "assertions": [],
            "series": {},
            "markers": [],
            "summary": {},
        }
        self.save()

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    @contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        entry: dict[str, Any] = {
            "name": name,
            "started_at": time.time(),
            "ended_at": None,
            "status": "running",
        }
        self.data["phases"].append(entry)
        self.save()
        try:
            yield entry
            entry["status"] = "completed"
        except (Interrupted, KeyboardInterrupt):
            entry["status"] = "interrupted"
            raise
        except BaseException as exc:
            entry["status"] = "failed"
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
