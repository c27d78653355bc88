"""PromQL building blocks shared by the assertions and the report.

A counter's change over a window [a, b] is read at the scrapes around its *edges* (`change`):
a fault window is widened to the enclosing scrapes (the end is the first sample at or after b:
a counter is monotonic, so `min_over_time(c[d] @ b+d)` is that sample; the start the last
sample at or before a, `max_over_time(c[d] @ a)`), while a calm window (`steady`, `recovery`,
`calm`) is narrowed to the scrapes inside it. Whatever the scrape interval, a fault window is
never shorter than asked, and the failures it causes never count against the calm beside it. Reading a stale series as zero is prevented elsewhere: every figure is
only trusted once `fresh.check` has shown its targets were scraped throughout the window.
"""

from __future__ import annotations

from harness.verdict.windows import Span


def sel(run_id: str, extra: str = "") -> str:
    return f'{{run="{run_id}"{"," + extra if extra else ""}}}'


def m(**matchers: str) -> str:
    """Label matchers: m(server="=~web-1", state="DOWN") -> 'server=~"web-1",state="DOWN"'."""
    out = []
    for label, value in matchers.items():
        op = next((o for o in ("=~", "!=", "!~") if value.startswith(o)), "=")
        out.append(f'{label}{op}"{value.removeprefix(op) if op != "=" else value}"')
    return ",".join(out)


def dur(seconds: float) -> str:
    """A PromQL duration, in whole milliseconds."""
    return f"{max(1, round(seconds * 1000))}ms"


def edge_end(series: str, at: float, edge: float) -> str:
    """Each series' first sample at or after `at` (monotonic counters only)."""
    return f"min_over_time({series}[{dur(edge)}] @ {at + edge:.3f})"


def edge_start(series: str, at: float, edge: float) -> str:
    """Each series' last sample at or before `at` (monotonic counters only)."""
    return f"max_over_time({series}[{dur(edge)}] @ {at:.3f})"


def change(
    metric: str, run_id: str, span: Span, edge: float, selector: str = "", inward: bool = False
) -> str:
    """How much a counter (summed over its series) grew over the window. A series born inside
    the window is absent at its start and counts from zero. Outward (fault windows, `run`): from
    the last sample at or before the start to the first at or after the end. Inward (`steady`,
    `recovery`, `calm`): from the first sample at or after the start to the last at or before the
    end, never below zero. Adjacent windows thus give the scrape intervals at their border to
    the fault window, so failures a fault causes never spill into the calm beside it, and every
    moment still belongs to some window."""
    s = f"{metric}{sel(run_id, selector)}"
    if inward:
        end = f"(sum(max_over_time({s}[{dur(edge)}] @ {span.end:.3f})) or vector(0))"
        start = f"(sum({edge_end(s, span.start, edge)}) or vector(0))"
        return f"clamp_min({end} - {start}, 0)"
    return (
        f"((sum({edge_end(s, span.end, edge)}) or vector(0)) - "
        f"(sum({edge_start(s, span.start, edge)}) or vector(0)))"
    )


def change_by(
    metric: str, by: str, run_id: str, span: Span, edge: float, selector: str = ""
) -> str:
    """Like `change`, per value of the label `by` (histogram buckets: by="le")."""
    s = f"{metric}{sel(run_id, selector)}"
    end = f"sum by ({by}) ({edge_end(s, span.end, edge)})"
    start = f"sum by ({by}) ({edge_start(s, span.start, edge)})"
    return f"({end} - ({start} or (0 * {end})))"


def resets(metric: str, run_id: str, span: Span, edge: float) -> str:
    """Counter resets (a restarted process) over the window, edges included."""
    s = f"{metric}{sel(run_id)}"
    return f"sum(resets({s}[{dur(span.seconds + 2 * edge)}] @ {span.end + edge:.3f})) or vector(0)"
