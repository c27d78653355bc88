"""`stale_reads` (issue 12): read-your-writes from the client's side. The read-your-writes user
(harness/load/users.py `place_and_read_back`) places an order and reads it back at once through
the app's read path; a read-back that does not find the user's own acknowledged order is stale.
The figure is stale read-backs over all read-backs in the window, from the Locust plugin's two
counters (`harness_reads_stale_total`, `harness_reads_checked_total`), read at the window's edges
like every counter figure. Under a read/write split (`db_reads: replicas`) it is the share of
reads a lagging replica answered before it had applied the write; reading from the primary it
should be 0.

`compile` takes the Compiler's counter-change builder, so this module needs nothing from
`assertions` (the verdict's assertions call in here, never the other way)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.observe import metrics
from harness.spec.models import Assertion
from harness.verdict.query import Figure
from harness.verdict.windows import Span

KINDS = ("stale_reads",)

# (metric, spans, selector, inward) -> PromQL of the counter's growth over the window
Change = Callable[..., str]


def compile(change: Change, a: Assertion, parts: list[Span], inward: bool) -> Figure:
    p: Any = a.params
    checked = change(metrics.READS_CHECKED.total, parts, inward=inward)
    stale = change(metrics.READS_STALE.total, parts, inward=inward)
    return Figure(
        f"{stale} / {checked}",
        float(p.max_ratio),
        "<=",
        "ratio",
        guards=[
            (
                checked,
                "no read-back of a user's own write in this window: nothing to measure "
                "(the load needs the read-your-writes user, locustfiles/read_your_writes.py)",
            )
        ],
        also={"reads_checked": checked, "reads_stale": stale},
    )
