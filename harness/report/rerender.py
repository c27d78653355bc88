"""Re-render a finished run's reports from its journal.

``harness report runs/<run-id>`` (or a test) calls :func:`rerender` to rebuild
``junit.xml`` and ``report.html`` beside ``journal.json`` — e.g. after a report
template change, or for a run that was interrupted before its report phase.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.report.html import write_html
from harness.report.junit import write_junit

__all__ = ["JOURNAL_NAME", "HTML_NAME", "JUNIT_NAME", "load_journal", "rerender"]

JOURNAL_NAME = "journal.json"
JUNIT_NAME = "junit.xml"
HTML_NAME = "report.html"


def load_journal(run_dir: str | Path) -> dict:
    """Read ``run_dir/journal.json``; clear errors for a missing or broken journal."""
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
    return journal


def rerender(run_dir: str | Path) -> list[Path]:
    """(Re)write ``junit.xml`` and ``report.html`` beside the journal; return their paths."""
    run_dir = Path(run_dir)
    journal = load_journal(run_dir)
    return [
        write_junit(journal, run_dir / JUNIT_NAME),
        write_html(journal, run_dir / HTML_NAME),
    ]
