"""No figure from missing data. Before an assertion's figure is trusted, every scrape target it
reads must have been scraped, successfully, throughout its window: `up` is 1 at every scrape and
no two scrapes are further apart than the edge tolerance. Otherwise a stale series would read as
absent, and absent as zero, and a broken system would pass; the assertion is inconclusive
instead (exit 2), naming the target and the instant."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from harness.observe.prom import Prometheus
from harness.remote.observer import user_up
from harness.verdict.promql import dur, sel
from harness.verdict.windows import Span

LOCUST = r"locust(-worker-[0-9]+|-remote-[0-9]+)?"
HARNESS = "harness"


@dataclass(frozen=True)
class Targets:
    """Which scrape targets (by `instance` regex) a figure reads, and how many there must be."""

    instance: str
    expected: int
    what: str


def locust(workers: int, dropped: tuple[str, ...] = ()) -> Targets:
    """Every Locust process; those in `dropped` (workers gone mid-run while load.min_workers
    held) are no longer required: the verdict judges what the others measured."""
    what = "the Locust process" + ("es" if workers else "")
    if not dropped:
        return Targets(LOCUST, 1 + workers, what)
    live = ["locust"] + [
        name
        for i in range(1, workers + 1)
        for name in (f"locust-worker-{i}", f"locust-remote-{i}")
        if name not in dropped
    ]
    return Targets("|".join(live), 1 + workers - len(dropped), what)


def harness() -> Targets:
    return Targets(HARNESS, 1, "the harness's watchers")


def edge(scrape_interval: float) -> float:
    """The longest gap between two scrapes a figure tolerates, and how far past a window's end
    its closing sample may lie."""
    return max(1.0, 2.5 * scrape_interval)


def check(
    prom: Prometheus, run_id: str, targets: list[Targets], span: Span, scrape_interval: float
) -> str | None:
    """None when every target was scraped throughout `span`; otherwise why the data is missing."""
    gap = edge(scrape_interval)
    # The window itself: a scrape that failed before it (a Locust process not listening yet)
    # changes none of its figures. The start edge reads the last sample before the window,
    # which is at most `gap` old, or absent when the target had counted nothing yet.
    w = max(span.seconds, 0.001)
    for t in targets:
        s = sel(run_id, f'instance=~"{t.instance}"')
        ups = {
            r["metric"].get("instance", "?"): float(r["value"][1])
            for r in prom.query(f"min_over_time(up{s}[{dur(w)}] @ {span.end:.3f})")
        }
        if len(ups) < t.expected:
            return (
                f"{t.what}: {len(ups)} of {t.expected} scrape targets have samples between "
                f"{span.start:.3f} and {span.end:.3f} (was Prometheus or the target down?)"
            )
        failed = sorted(i for i, v in ups.items() if v < 1)
        if failed:
            return (
                f"{t.what}: a scrape of {', '.join(failed)} failed between {span.start:.3f} and "
                f"{span.end:.3f} (up=0): its figures for this window are incomplete"
            )
        ages = prom.query(
            f"max_over_time((time() - timestamp(up{s}))[{dur(w)}:100ms] @ {span.end:.3f})"
        )
        stale = sorted(
            (r["metric"].get("instance", "?"), float(r["value"][1]))
            for r in ages
            if float(r["value"][1]) > gap
        )
        if stale:
            inst, age = stale[0]
            return (
                f"{t.what}: no scrape of {inst} for {age:.1f}s inside the window "
                f"(tolerated: {gap:g}s): its figures for this window are stale"
            )
    return None


def check_user(prom: Prometheus, instances: list[str], span: Span) -> str | None:
    """None when the user's Prometheus (`runtime: hosts`, `prometheus: {url}`, read through the
    run's) scraped each of `instances` successfully throughout `span`; otherwise why its series
    are incomplete. Its scrape interval is its own, so it is read off the samples: the median
    spacing of `up`'s raw samples around the window, and no two scrapes covering the window may
    lie further apart than `edge()` of it (a restart of the user's Prometheus leaves a gap its
    `up` does not show)."""
    around = 600.0  # seconds of samples read on each side: the spacing of slow scrapes too
    for inst in instances:
        expr = f"{user_up(inst)}[{dur(span.seconds + 2 * around)}] @ {span.end + around:.3f}"
        rows = prom.query(expr)
        who = f"the user's Prometheus's scrapes of {inst}"
        if not rows:
            return f"{who}: none around the window ({expr} is empty)"
        for row in rows:
            samples = [(float(t), float(v)) for t, v in row["values"]]
            times = [t for t, _ in samples]
            if len(times) < 2:
                return f"{who}: fewer than two around the window: its figures are unknown"
            step = statistics.median(b - a for a, b in zip(times, times[1:], strict=False))
            gap = edge(step)
            before = [s for s in samples if s[0] <= span.start]
            after = [s for s in samples if s[0] > span.end][:1]
            pts = before[-1:] + [s for s in samples if span.start < s[0] <= span.end] + after
            if not before or span.start - before[-1][0] > gap:
                return f"{who}: none in the {gap:g}s before the window's start {span.start:.3f}"
            if not after and span.end - pts[-1][0] > gap:
                return f"{who}: none since {pts[-1][0]:.3f}, before the window's end {span.end:.3f}"
            for (a, _), (b, _) in zip(pts, pts[1:], strict=False):
                if b - a > gap:
                    return (
                        f"{who}: none between {a:.3f} and {b:.3f} (it scrapes every {step:g}s; "
                        "was it down?): its series are incomplete in the window"
                    )
            failed = [t for t, v in pts if v != 1]
            if failed:
                return f"{who}: one failed at {failed[0]:.3f} (up=0): its series are incomplete"
    return None
