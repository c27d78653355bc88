"""Regenerate the README's benchmark figure table from bench/results/*.json, so the table can
only say what a result file says. The table sits between two markers in README.md:

    <!-- bench-figures:begin --> ... <!-- bench-figures:end -->

    python bench/figures.py            # rewrite the table in place
    python bench/figures.py --check    # exit 1 if README.md is not what the results give
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import RESULTS, ROOT

README = ROOT / "README.md"
BEGIN, END = "<!-- bench-figures:begin -->", "<!-- bench-figures:end -->"


def _mmm(s: dict[str, float], unit: str = "", spec: str = ".2f") -> str:
    return f"{s['median']:{spec}}{unit} (min {s['min']:{spec}}, max {s['max']:{spec}})"


def bringup(d: dict[str, Any]) -> list[tuple[str, str]]:
    n = len(d["pairs"])
    return [
        (
            f"`harness up` / (`docker-compose up -d` + healthy), ha.yaml, {n} interleaved pairs",
            f"{_mmm(d['up_ratio'])}; harness {_mmm(d['harness_up'], ' s', '.1f')}, "
            f"Compose {_mmm(d['compose_up'], ' s', '.1f')}",
        ),
        (
            "`harness up` / (`docker-compose up -d` + healthy + answering through the VIP)",
            f"{_mmm(d['up_ratio_vip'])}; Compose {_mmm(d['compose_up_vip'], ' s', '.1f')}"
            if "up_ratio_vip" in d
            else "not measured",
        ),
        (
            "`harness down` / `docker-compose down -v -t 0`",
            f"{_mmm(d['harness_down'], ' s', '.1f')} / {_mmm(d['compose_down'], ' s', '.1f')}",
        ),
    ]


def run(d: dict[str, Any]) -> list[tuple[str, str]]:
    if not d.get("overhead_s"):  # an older result file (wall time only) or no complete run
        return []
    steps = sorted(
        (
            (v, k)
            for k, v in d["step_median_s"].items()
            if v is not None and k != "load: configured duration"
        ),
        reverse=True,
    )[:3]
    rows = []
    cmp = d.get("config", {}).get("compare")
    if cmp:  # before/after, interleaved: pairs of one round where both reached a verdict
        done = {
            (r.get("round", r["n"] // 2), r["side"]): r["overhead_s"]
            for r in d["runs"]
            if r["exit_code"] in (0, 1)
        }
        ratios = [
            done[n, s] / done[n, cmp]
            for (n, s) in done
            if s != cmp and (n, cmp) in done and done[n, cmp] > 0
        ]
        before = d["compare"]["before"]["overhead_s"]
        if ratios and before:
            rows.append(
                (
                    f"the same, before ({cmp}) and after, interleaved",
                    f"before {_mmm(before, ' s', '.1f')}; after/before paired "
                    + ", ".join(f"{x:.2f}" for x in sorted(ratios)),
                )
            )
    return [
        (
            f"`harness run {d['topology']}` beyond its {d['configured_load_s']:g} s of load, "
            f"{sum(1 for r in d['runs'] if r.get('side', '') != cmp and r['exit_code'] in (0, 1))} runs",
            f"{_mmm(d['overhead_s'], ' s', '.1f')}; largest (median): "
            + ", ".join(f"{k} {v:.1f} s" for v, k in steps),
        ),
        *rows,
    ]


def cold(d: dict[str, Any]) -> list[tuple[str, str]]:
    def how(s: dict[str, Any]) -> str:  # what a step used: base tool, installer, build jobs
        said = [str(s[k]) for k in ("tool", "installer") if s.get(k)]
        said += [f"{s['jobs']} at once"] if s.get("jobs") not in (None, "default") else []
        return f" ({', '.join(said)})" if said else ""

    steps = ", ".join(f"{k} {v['seconds']:.0f} s{how(v)}" for k, v in d["steps"].items())
    skipped = f" (not timed: {', '.join(d['skipped'])})" if d.get("skipped") else ""
    return [
        (
            "fresh clone to first verdict, no harness image (`bench/cold.py`)",
            f"{d['total_s']:.0f} s ({d['total_s'] / 60:.1f} min): {steps}{skipped}",
        )
    ]


def load(d: dict[str, Any]) -> list[tuple[str, str]]:
    r = d.get("ratios") or {}
    if not r.get("harness/raw rps"):  # an older result file (before the VIP pairs)
        return []
    n, cpu = len(d["paired"]["harness/raw rps"]), "harness/raw cpu_per_request"
    return [
        (
            f"harness load / raw Locust through ha.yaml's VIP, req/s, {n} interleaved pairs",
            f"{_mmm(r['harness/raw rps'])}; raw / wrk (the ceiling) {_mmm(r['raw/wrk rps'])}",
        ),
        (
            "harness / raw Locust, CPU per request: process lifetime / steady window",
            f"{_mmm(r[cpu])} / {_mmm(r['harness/raw steady cpu_per_request'])}",
        ),
    ]


# result-file prefix -> rows; a script whose results are not here yet adds no row
ROWS: dict[str, Callable[[dict[str, Any]], list[tuple[str, str]]]] = {
    "bringup": bringup,
    "run": run,
    "cold": cold,
    "load": load,
}


def load_note(d: dict[str, Any]) -> str:
    """The machine's 1-min load average when the bench started (2 cores: above 2, other work
    shared them), so a figure from a busy minute says so."""
    load = (d.get("machine") or {}).get("loadavg_at_start") or []
    return f" (load avg {load[0]:g} at start)" if load else ""


def table() -> str:
    lines = ["| what | figure | from |", "|---|---|---|"]
    for prefix, rows in ROWS.items():
        # a run with steps left out (bench/cold.py --skip) measured a part, not the figure
        files = [
            f
            for f in sorted(RESULTS.glob(f"{prefix}-*.json"))
            if not json.loads(f.read_text()).get("skipped")
        ]
        if not files:
            continue
        data = json.loads(files[-1].read_text())
        note = load_note(data)
        for what, figure in rows(data):
            lines.append(f"| {what} | {figure} | `bench/results/{files[-1].name}`{note} |")
    return "\n".join(lines)


def render(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"README.md has no {BEGIN} ... {END} block", file=sys.stderr)
        return 2
    new = render(text)
    if args.check:
        return 0 if new == text else 1
    Path(README).write_text(new)
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
