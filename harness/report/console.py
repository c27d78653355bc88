"""The console summary: one table of assertions, the load figures, the verdict line."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.journal import AssertionStatus, RunStatus

STYLE: dict[str, str] = {
    AssertionStatus.PASSED: "green",
    AssertionStatus.FAILED: "bold red",
    AssertionStatus.ERROR: "yellow",
    AssertionStatus.INCONCLUSIVE: "yellow",
}


def _num(v: Any, fmt: str = "{:,}") -> str:
    return "-" if v is None else fmt.format(v)


def print_summary(console: Console, journal: dict[str, Any]) -> None:
    s = journal.get("summary") or {}
    if s:
        load = Table(title="Load", show_header=True, header_style="bold")
        for col in (
            "requests",
            "req/s",
            "failures",
            "error ratio",
            "sessions started",
            "sessions lost",
            "writes acked",
        ):
            load.add_column(col, justify="right")
        load.add_row(
            _num(s.get("requests")),
            _num(s.get("rps"), "{:,.1f}"),
            _num(s.get("failures")),
            _num(s.get("error_ratio"), "{:.4%}"),
            _num(s.get("sessions_started")),
            _num(s.get("sessions_lost")),
            _num(s.get("writes_acked")),
        )
        console.print(load)
    faults = journal.get("faults") or []
    if faults:
        t0 = journal.get("load_started_at") or journal["started_at"]
        ft = Table(title="Faults", header_style="bold")
        for col in ("fault", "kind", "target", "injected (t+s)", "rolled back (t+s)", "status"):
            ft.add_column(col)
        for f in faults:
            inj, rb = f.get("injected_at"), f.get("rolled_back_at")
            ft.add_row(
                escape(f["name"]),
                f["kind"],
                escape(str(f["target"])),
                _num(inj and inj - t0, "{:.3f}"),
                _num(rb and rb - t0, "{:.3f}"),
                f["status"],
            )
        console.print(ft)
    results = journal.get("assertions") or []
    if results:
        at = Table(title="Assertions", header_style="bold")
        for col in ("assertion", "during", "measured", "bound", "status"):
            at.add_column(col)
        for r in results:
            at.add_row(
                escape(r["name"]),
                r["during"],
                r["message"].split(" (must")[0] if r["measured"] is not None else "-",
                _num(r["bound"], "{:g}"),
                f"[{STYLE.get(r['status'], '')}]{r['status'].upper()}[/]",
            )
        console.print(at)


def print_verdict(
    console: Console, status: str, exit_code: int, run_dir: str, error: str | None
) -> None:
    if error:
        console.print(f"[yellow]{escape(error)}[/]", highlight=False)
    words: dict[str, str] = {RunStatus.PASSED: "HELD", RunStatus.FAILED: "FAILED"}
    word = words.get(status, status.upper())
    console.print(
        f"[{STYLE.get(status, 'yellow')}]verdict: {word}[/] (exit {exit_code}) - reports in {run_dir}/"
    )
