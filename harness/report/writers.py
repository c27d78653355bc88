"""Write every report file of a run: journal.json (already kept up to date), junit.xml, report.html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_reports(journal: dict[str, Any], run_dir: Path) -> list[Path]:
    from harness.report.html import write_html
    from harness.report.junit import write_junit

    (run_dir / "journal.json").write_text(json.dumps(journal, indent=2, default=str))
    write_junit(journal, run_dir / "junit.xml")
    write_html(journal, run_dir / "report.html")
    return [run_dir / "journal.json", run_dir / "junit.xml", run_dir / "report.html"]
