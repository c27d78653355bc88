"""Render the sample journal and load it in headless Chromium, as a person would.

Skipped only on a developer machine without /usr/bin/chromium; under CI (env ``CI``
set) a missing Chromium is a failure, because CI installs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from harness.report.html import write_html

CHROMIUM = Path("/usr/bin/chromium")
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "journal_sample.json"
PLOTS = ("rps", "errors", "p95", "backends", "vip")
BASE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(
                f"{CHROMIUM} is missing: CI must install chromium (apt-get install chromium)"
            )
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    journal = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return write_html(journal, tmp_path_factory.mktemp("report") / "report.html")


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, cwd=cwd, stdin=subprocess.DEVNULL
    )


def test_dom_has_five_drawn_plots(chromium: str, report: Path, tmp_path: Path) -> None:
    proc = _run(
        [
            chromium,
            *BASE_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--dump-dom",
            report.as_uri(),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "<svg" in dom, proc.stderr[-2000:]
    svgs = re.findall(r"<svg\b[^>]*>.*?</svg>", dom, re.S)
    by_name = {}
    for svg in svgs:
        m = re.search(r'data-plot="([^"]+)"', svg)
        if m:
            by_name[m.group(1)] = svg
    assert set(by_name) == set(PLOTS)
    for name, svg in by_name.items():
        assert re.search(r"<(?:polyline|path)\b", svg), f"{name}: nothing drawn"
        assert "no data" not in svg, name
    # the hover script ran without breaking the page
    assert 'class="tip"' in dom


def test_screenshot(chromium: str, report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = _run(
        [
            chromium,
            *BASE_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            "--window-size=1280,2400",
            report.as_uri(),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.exists(), proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10 * 1024
