"""The report's backend lane (issue 13): per HAProxy instance, what its own exporter said of its
servers over the run, so a deep health check that ejected every node reads "all backends DOWN"
on the timeline (read from a real Prometheus, tests/promlab.py, and rendered into the HTML)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from harness.report.collect import backends_up
from harness.report.html import render_html
from tests.promlab import BASE as T0
from tests.promlab import PromLab

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "journal_sample.json"


def test_every_server_down_on_an_lb_reads_all_backends_down(promlab: PromLab) -> None:
    times = promlab.scrape_times(T0, T0 + 20)
    for server, down in (("web-1", (5, 12)), ("web-2", (6, 12))):
        labels = {"run": "r1", "instance": "lb-1", "proxy": "app", "server": server}
        promlab.gauge(
            "haproxy_server_status",
            {**labels, "state": "UP"},
            [(t, 0.0 if down[0] <= t - T0 < down[1] else 1.0) for t in times],
        )
    promlab.start()
    lanes = backends_up(promlab.prom, "r1", T0, T0 + 20, 1.0)
    states = {round(t - T0): s for t, s in lanes["lb-1"]}
    assert states[2] == "all 2 UP" and states[5] == "1/2 UP"
    assert states[8] == "all backends DOWN" and states[15] == "all 2 UP"


def test_the_lane_is_drawn_with_its_states() -> None:
    j: dict[str, Any] = copy.deepcopy(json.loads(FIXTURE.read_text(encoding="utf-8")))
    t0 = j["load_started_at"]
    j["series"]["backends_up"] = {
        "lb-1": [[t0 + i, "all backends DOWN" if 4 <= i < 9 else "all 2 UP"] for i in range(15)]
    }
    html = render_html(j)
    m = re.search(r'<svg\b[^>]*data-plot="backends-up-lb-1"[^>]*>.*?</svg>', html, re.S)
    assert m and "Backends UP: lb-1" in m.group(0)
    lanes = re.findall(r'class="tick lane-label"[^>]*>([^<]+)<', m.group(0))
    assert sorted(lanes) == ["all 2 UP", "all backends DOWN"]
