"""The regression gate (`compare:`): each figure of this run against the same assertion's figure
in a previous run's journal. A figure worse than the baseline by more than its tolerance fails;
`max: auto` only says a system behaves as its own config promises, this says it did not get
worse than it was.

Tolerances are looked up by assertion name, then kind, then `default`: `+20%` (relative to the
baseline figure) or `+0.5` / `+500ms` (absolute, in the figure's unit). "Worse" follows the
assertion's bound: higher for `max:`/`below:`, lower for `above:`; `between:` is not compared.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from harness.errors import SpecError
from harness.verdict.evaluation import fmt as _fmt
from harness.verdict.query import FAILED, PASSED, Result


def load_baseline(path: Path) -> dict[str, Any]:
    """A run directory or its journal.json."""
    file = path / "journal.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except OSError as exc:
        raise SpecError(
            [
                f"{file}: compare: cannot read the baseline ({exc.strerror}) "
                "(give a run directory or its journal.json)"
            ]
        ) from None
    except json.JSONDecodeError as exc:
        raise SpecError([f"{file}:{exc.lineno}: compare: not a journal ({exc.msg})"]) from None
    if not isinstance(data, dict) or not isinstance(data.get("assertions"), list):
        raise SpecError([f"{file}: compare: not a harness journal (no assertions list)"])
    return data


def _number(v: Any) -> float | None:
    if v == "+Inf":
        return math.inf
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _tolerance(tolerances: dict[str, tuple[str, float]], r: Result) -> tuple[str, float]:
    for key in (r.name, r.kind, "default"):
        if key in tolerances:
            return tolerances[key]
    return ("relative", 0.10)


def compare(
    results: list[Result], baseline: dict[str, Any], tolerances: dict[str, tuple[str, float]]
) -> tuple[list[Result], list[dict[str, Any]]]:
    """(extra results that gate the run, rows for the report's side-by-side table)."""
    before = {str(a.get("name")): a for a in baseline["assertions"] if isinstance(a, dict)}
    gates: list[Result] = []
    rows: list[dict[str, Any]] = []
    for r in results:
        old = before.get(r.name)
        row: dict[str, Any] = {"name": r.name, "kind": r.kind, "unit": r.unit, "now": r.measured}
        rows.append(row)
        if old is None:
            row["note"] = "not in the baseline"
            continue
        row["baseline"] = base = _number(old.get("measured"))
        now = r.measured
        if "between" in r.extra or base is None or now is None:
            row["note"] = (
                "nothing to compare" if "between" not in r.extra else "between: not compared"
            )
            continue
        higher_is_worse = r.extra.get("op") != ">"
        how, amount = _tolerance(tolerances, r)
        slack = abs(base) * amount if how == "relative" else amount
        limit = base + slack if higher_is_worse else base - slack
        worse = now > limit if higher_is_worse else now < limit
        tol = f"+{amount:.0%}" if how == "relative" else f"+{_fmt(amount, r.unit)}"
        row.update(limit=limit, tolerance=tol, status=FAILED if worse else PASSED)
        change = (
            f"{(now - base) / abs(base):+.1%}"
            if base and not math.isinf(base)
            else f"{now - base:+g}"
        )
        gates.append(
            Result(
                f"{r.name} vs baseline",
                "compare",
                r.during,
                FAILED if worse else PASSED,
                now,
                limit,
                r.unit,
                r.promql,
                f"{_fmt(now, r.unit)} now, {_fmt(base, r.unit)} in run {baseline.get('run_id', '?')} "
                f"({change}; tolerance {tol})",
                {"baseline": base, "baseline_run": baseline.get("run_id")},
            )
        )
    return gates, rows
