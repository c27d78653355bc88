"""HTML report: self-contained, one SVG per plot, faults/markers drawn, robust, escaped."""

from __future__ import annotations

import copy
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report.html import render_html, write_html
from harness.report.plots import nice_ticks
from harness.report.rerender import rerender

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "journal_sample.json"
PLOTS = ("rps", "errors", "p95", "backends", "vip")
SVG_RE = re.compile(r"<svg\b[^>]*>.*?</svg>", re.S)


@pytest.fixture()
def journal() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def _svgs(html: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for svg in SVG_RE.findall(html):
        m = re.search(r'data-plot="([^"]+)"', svg)
        assert m, svg[:200]
        assert m.group(1) not in out, f"two plots named {m.group(1)}"
        out[m.group(1)] = svg
    return out


def test_self_contained(journal: dict) -> None:
    html = render_html(journal)
    assert html.startswith("<!DOCTYPE html>")
    # nothing is loaded from elsewhere: no external src/href, no @import/url(), no CDN
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert not re.search(r"<(?:link|iframe|img|object|embed)\b", html, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert "http://" not in html and "https://" not in html


def test_one_svg_per_plot_with_axes_and_data(journal: dict) -> None:
    svgs = _svgs(render_html(journal))
    assert set(svgs) == set(PLOTS)
    for name, svg in svgs.items():
        assert 'class="plot' in svg
        assert "no data" not in svg, name
        assert re.search(r"<(?:polyline|path)\b", svg), name
        assert 'class="tick"' in svg, name  # tick labels
        assert ">0 s<" in svg and ">60 s<" in svg, name  # x axis: seconds since load start
    # backends: one line per backend and a legend
    for backend in ("web-1", "web-2", "web-3"):
        assert f'data-name="{backend}"' in svgs["backends"]
        assert f">{backend}</text>" in svgs["backends"]
    # vip: one lane per holder plus the no-holder gap of the fixture
    for lane in ("lb-1", "lb-2", "(none)"):
        assert f'data-state="{lane}"' in svgs["vip"]


def test_svgs_are_well_formed_xml(journal: dict) -> None:
    for svg in _svgs(render_html(journal)).values():
        ET.fromstring(svg)


def test_fault_windows_and_markers_drawn(journal: dict) -> None:
    svgs = _svgs(render_html(journal))
    for name in PLOTS:
        svg = svgs[name]
        # stop web-1 and the redis latency have a rollback -> shaded windows
        assert svg.count('class="fault-window"') == 2, name
        # kill lb-1 has no duration -> a thin line
        assert svg.count('class="fault-line"') == 1, name
        for label in ("stop web-1", "kill lb-1", "latency redis +200ms"):
            assert f">{label}</text>" in svg, (name, label)
        assert svg.count('class="marker"') == 3, name
        assert 'data-kind="ejection"' in svg and 'data-kind="failover"' in svg
        assert 'stroke-dasharray="5 4"' in svg
        assert ">web-1 ejected (LB)</text>" in svg


def test_window_position_matches_injection_time(journal: dict) -> None:
    svg = _svgs(render_html(journal))["rps"]
    xs = re.search(r'data-x0="([^"]+)" data-x1="([^"]+)"', svg)
    lr = re.search(r'data-left="([^"]+)" data-right="([^"]+)"', svg)
    assert xs and lr
    x0, x1 = (float(v) for v in xs.groups())
    left, right = (float(v) for v in lr.groups())
    rect = re.search(r'<rect class="fault-window" x="([^"]+)" y="[^"]+" width="([^"]+)"', svg)
    assert rect
    px = left + (20.03 - x0) / (x1 - x0) * (right - left)
    width = (35.11 - 20.03) / (x1 - x0) * (right - left)
    assert float(rect.group(1)) == pytest.approx(px, abs=0.2)
    assert float(rect.group(2)) == pytest.approx(width, abs=0.2)


def test_unrolled_fault_with_duration_runs_to_the_end(journal: dict) -> None:
    journal["faults"][0]["rolled_back_at"] = None
    journal["faults"][0]["status"] = "injected"
    svg = _svgs(render_html(journal))["rps"]
    assert 'class="fault-window open"' in svg
    assert "stop web-1 (not rolled back)" in svg


def test_no_fault_drawn_when_never_injected(journal: dict) -> None:
    for f in journal["faults"]:
        f["injected_at"] = None
        f["status"] = "failed"
    html = render_html(journal)
    assert 'class="fault-window' not in html and 'class="fault-line"' not in html
    assert "stop web-1" in html  # still listed in the fault table


@pytest.mark.parametrize("how", ["missing", "empty"])
def test_empty_or_missing_series_say_no_data(journal: dict, how: str) -> None:
    if how == "missing":
        del journal["series"]
    else:
        journal["series"] = {k: ([] if k != "backend_rps" else {}) for k in journal["series"]}
    svgs = _svgs(render_html(journal))
    assert set(svgs) == set(PLOTS)
    for name, svg in svgs.items():
        assert "no data" in svg, name
        assert "<polyline" not in svg


def test_partial_series(journal: dict) -> None:
    journal["series"] = {
        "rps": journal["series"]["rps"],
        "backend_rps": {"web-1": [], "web-2": [[1790000011.0, 5.0], [1790000012.0, "NaN"]]},
        "vip_holder": [],
        "p95_seconds": [[1790000011.0, None], ["garbage"], None],
    }
    svgs = _svgs(render_html(journal))
    assert "no data" not in svgs["rps"]
    assert "no data" in svgs["errors"] and "no data" in svgs["p95"] and "no data" in svgs["vip"]
    assert "no data" not in svgs["backends"]  # web-2 has one usable point
    assert "<circle" in svgs["backends"]


def test_minimal_journal_renders() -> None:
    html = render_html({"run_id": "r-min", "status": "error", "assertions": []})
    assert "ERROR" in html and "r-min" in html
    assert "No assertions were evaluated." in html
    assert set(_svgs(html)) == set(PLOTS)


def test_interrupted_run_without_series(journal: dict) -> None:
    for key in ("series", "markers", "ended_at", "summary"):
        journal.pop(key)
    journal["status"] = "error"
    journal["phases"][4]["status"] = "interrupted"
    journal["phases"][4]["ended_at"] = None
    html = render_html(journal)
    assert "unfinished" in html
    svgs = _svgs(html)
    # no samples at all: every chart says so (the fault table still lists the faults)
    assert "kill lb-1" in html
    assert all("no data" in s for s in svgs.values())


def test_verdict_header(journal: dict) -> None:
    html = render_html(journal)
    assert 'data-status="failed"' in html
    assert ">FAILED<" in html
    assert journal["run_id"] in html
    assert "1 min 35 s" in html  # 94.877 s
    journal["status"] = "passed"
    assert ">PASSED<" in render_html(journal)


def test_assertion_table(journal: dict) -> None:
    html = render_html(journal)
    table = html[html.index('<table class="assertions"') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr class=") == 6
    assert "268 ms" in table and "250 ms" in table  # seconds shown humanely
    assert "0.887 %" in table  # ratio shown as percent
    assert "<details><summary>PromQL</summary><pre>" in table
    assert "harness_request_duration_seconds_bucket{run=&quot;20261122-101500-ab12&quot;}" in table


def test_script_in_fault_name_is_escaped(journal: dict) -> None:
    evil = "<script>alert(1)</script>"
    journal["faults"][0]["name"] = f"stop {evil} web-1"
    journal["markers"][0]["label"] = evil
    journal["assertions"][0]["name"] = evil
    journal["assertions"][0]["promql"] = f"up{{job='{evil}'}}"
    journal["series"]["backend_rps"][evil] = journal["series"]["backend_rps"]["web-1"]
    journal["run_id"] = evil
    html = render_html(journal)
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # only our own inline script remains
    assert len(re.findall(r"<script\b", html)) == 1
    for svg in _svgs(html).values():
        ET.fromstring(svg)


def test_long_series_is_downsampled(journal: dict) -> None:
    t0 = journal["load_started_at"]
    journal["series"]["rps"] = [[t0 + i * 0.5, float(i % 50)] for i in range(20000)]
    journal["series"]["rps"][12345][1] = 999.0  # a spike must survive the reduction
    svg = _svgs(render_html(journal))["rps"]
    points = re.search(r'<polyline class="line" points="([^"]+)"', svg)
    assert points
    assert len(points.group(1).split()) <= 1000
    assert ">1k<" in svg or ">1000<" in svg  # y axis reaches the spike


def test_sampling_gap_breaks_the_line(journal: dict) -> None:
    rps = journal["series"]["rps"]
    journal["series"]["rps"] = rps[:20] + rps[40:]
    svg = _svgs(render_html(journal))["rps"]
    assert svg.count('<polyline class="line"') == 2


def test_nice_ticks() -> None:
    assert nice_ticks(0, 183.4, 4) == [0, 50, 100, 150, 200]
    assert nice_ticks(0, 0.97, 4) == [0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(0, 0, 4)[0] == 0 and nice_ticks(0, 0, 4)[-1] > 0
    ticks = nice_ticks(-3.2, 65.5, 10)
    assert ticks[0] <= -3.2 and ticks[-1] >= 65.5


def test_write_html(tmp_path: Path, journal: dict) -> None:
    out = write_html(copy.deepcopy(journal), tmp_path / "x" / "report.html")
    assert out.read_text(encoding="utf-8") == render_html(journal)


def test_rerender_writes_both_files(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "20261122-101500-ab12"
    run_dir.mkdir(parents=True)
    shutil.copy(FIXTURE, run_dir / "journal.json")
    (run_dir / "report.html").write_text("stale", encoding="utf-8")
    paths = rerender(run_dir)
    assert [p.name for p in paths] == ["junit.xml", "report.html"]
    assert all(p.parent == run_dir and p.stat().st_size > 0 for p in paths)
    ET.fromstring((run_dir / "junit.xml").read_bytes())
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert html != "stale" and 'data-plot="vip"' in html


def test_rerender_missing_journal(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"journal\.json"):
        rerender(tmp_path)


def test_rerender_broken_journal(tmp_path: Path) -> None:
    (tmp_path / "journal.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        rerender(tmp_path)
