"""The HTML report (issue 12, ask 6): one VIP-holder lane per VIP from the watchers' change
log (the load balancers' and each data service's: the database's and Redis's holder is their
primary), read through the journal's typed records; the old sample journal (a single
`series.vip_holder`, no `watch`) keeps rendering its one lane."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.report.html import render_html

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "journal_sample.json"


@pytest.fixture()
def journal() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def plot(html: str, plot_id: str) -> str:
    m = re.search(rf'<svg\b[^>]*data-plot="{re.escape(plot_id)}"[^>]*>.*?</svg>', html, re.S)
    assert m, f"no plot {plot_id}"
    return m.group(0)


def lanes(svg: str) -> list[str]:
    return re.findall(r'class="tick lane-label"[^>]*>([^<]+)<', svg)


def test_the_old_sample_journal_keeps_its_single_vip_lane(journal: dict[str, Any]) -> None:
    html = render_html(journal)
    svg = plot(html, "vip")
    assert "VIP holder" in svg and lanes(svg)
    assert 'data-plot="vip-' not in html


def test_every_vip_gets_its_own_holder_lane(journal: dict[str, Any]) -> None:
    j = copy.deepcopy(journal)
    t0, t1 = j["load_started_at"], j["load_started_at"] + 20
    j["load_ended_at"] = t1
    j["watch"] = {
        "vip_holder": {
            "lb": [[t0 - 5, "lb-1"]],
            "mysql": [[t0 - 5, "mysql-1"], [t0 + 10, None], [t0 + 13.2, "mysql-2"]],
            "redis": [[t0 - 5, "redis-1"], [t0 + 8, None], [t0 + 14.1, "redis-3"]],
        }
    }
    html = render_html(j)
    assert 'data-plot="vip"' not in html  # the per-service lanes replace the single one
    assert lanes(plot(html, "vip-lb")) == ["lb-1"]
    mysql = plot(html, "vip-mysql")
    assert "VIP holder: mysql" in mysql and lanes(mysql)[:2] == ["mysql-1", "mysql-2"]
    # the promoted replica's band starts where the watcher saw it take the VIP (t = 13.2 s)
    bands = re.findall(r'data-state="mysql-2"[^>]*>\s*<title>mysql-2: ([\d.]+) s', mysql)
    assert bands and float(bands[0]) == pytest.approx(13.2, abs=0.01)
    assert lanes(plot(html, "vip-redis"))[:2] == ["redis-1", "redis-3"]


def test_entries_that_are_not_records_are_skipped_not_fatal(journal: dict[str, Any]) -> None:
    j = copy.deepcopy(journal)
    j["faults"] = [*j["faults"], "garbage", 3]
    j["assertions"] = [*j["assertions"], None]
    j["markers"] = [*j["markers"], ["not", "a", "record"]]
    j["phases"] = [{"name": "load", "status": "completed"}, 7]
    j["watch"] = {"vip_holder": {"db": "not a log"}}
    html = render_html(j)
    assert "Harness run" in html and "garbage" not in html
