"""Re-render a finished run's reports from its journal.

``harness report runs/<run-id>`` (or a test) calls :func:`rerender` to rebuild
``junit.xml`` and ``report.html`` beside ``journal.json`` — e.g. after a report
template change, or for a run that was interrupted before its report phase.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from harness.journal import JOURNAL_NAME, load_journal
from harness.report.html import write_html
from harness.report.junit import write_junit

__all__ = ["JOURNAL_NAME", "HTML_NAME", "JUNIT_NAME", "load_journal", "rerender"]

JUNIT_NAME = "junit.xml"
HTML_NAME = "report.html"


def rerender(run_dir: str | Path) -> list[Path]:
    """(Re)write ``junit.xml`` and ``report.html`` beside the journal; return their paths."""
    run_dir = Path(run_dir)
    journal = cast(dict[str, Any], load_journal(run_dir))
    return [
        write_junit(journal, run_dir / JUNIT_NAME),
        write_html(journal, run_dir / HTML_NAME),
    ]
