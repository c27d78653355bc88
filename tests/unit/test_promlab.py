"""The `promlab` fixture (tests/promlab.py) against the Prometheus semantics the verdict relies on,
each checked on a real Prometheus (Debian's 2.42) through the production client
(harness.observe.prom.Prometheus). Scrapes every 1 s, lookback 999 ms (the lab's default: a
failed scrape makes the target's series absent until the next successful one, as staleness
markers do).

The idioms below are written out literally, as the verdict compiled them up to commit 49e217d
(harness/verdict/assertions.py), so these tests keep documenting their traps whatever the
verdict becomes.
"""

from __future__ import annotations

import httpx
import pytest

from harness.errors import InfrastructureError
from tests.promlab import BASE, PromLab, PromLabError

T0 = BASE
RUN = "r1"


def old_delta(metric: str, a: float, b: float, selector: str = f'{{run="{RUN}"}}') -> str:
    """The counter change over [a, b] as the verdict wrote it before: `... or vector(0)`."""
    return (
        f"((sum({metric}{selector} @ {b:.3f}) or vector(0)) - "
        f"(sum({metric}{selector} @ {a:.3f}) or vector(0)))"
    )


def test_at_reads_the_last_sample_at_or_before_t_and_a_later_series_is_absent(
    promlab: PromLab,
) -> None:
    promlab.counter("c", {"run": RUN, "instance": "a"}, [(T0 + k, 10.0 * k) for k in range(11)])
    promlab.counter(
        "c_total", {"run": RUN, "instance": "b"}, [(T0 + k, 100.0 + k) for k in range(5, 11)]
    )
    promlab.start()
    p = promlab.prom

    def total(at: float) -> float | None:
        return p.scalar(f'sum(c_total{{run="{RUN}"}} @ {at:.3f})')

    assert total(T0 + 3) == 30  # a sample exactly at T counts
    assert total(T0 + 3.5) == 30  # else the last one before T; b (first sample at 5) is absent
    assert total(T0 + 2.999) == 20
    assert total(T0 - 0.001) is None  # before any sample: no series at all
    assert p.query(f'c_total{{instance="b"}} @ {T0 + 4.999:.3f}') == []
    assert total(T0 + 5) == 50 + 105
    # "c" and "c_total" are the same family: stored as c_total, as a client library exposes it
    assert {s["metric"]["instance"] for s in p.query(f"c_total @ {T0 + 6:.3f}")} == {"a", "b"}


def test_a_failed_scrape_makes_the_series_absent_until_the_next_successful_one(
    promlab: PromLab,
) -> None:
    ok = promlab.scrape_times(T0, T0 + 10, failed=[T0 + 5])
    promlab.counter("c", {"run": RUN}, [(t, 7.0) for t in ok])
    promlab.scrape_target("gen", "gen-1", RUN, [(t, 1.0) for t in ok] + [(T0 + 5, 0.0)])
    promlab.start()
    p = promlab.prom

    def present(at: float) -> bool:
        return bool(p.query(f'c_total{{run="{RUN}"}} @ {at:.3f}'))

    assert [present(T0 + x) for x in (4, 4.5, 4.999)] == [True] * 3  # until the next scrape
    assert [present(T0 + x) for x in (5, 5.5, 5.999)] == [False] * 3  # failed at 5: stale
    assert present(T0 + 6)
    assert p.scalar(f'up{{job="gen",run="{RUN}"}} @ {T0 + 5:.3f}') == 0
    assert p.scalar(f'up{{job="gen",run="{RUN}"}} @ {T0 + 5.5:.3f}') == 0
    assert p.scalar(f'min_over_time(up{{run="{RUN}"}}[10s] @ {T0 + 10:.3f})') == 0
    assert p.scalar(f'count_over_time(up{{run="{RUN}"}}[10s] @ {T0 + 10:.3f})') == 11


def test_one_failed_scrape_reads_as_zero_in_the_old_delta_idiom(promlab: PromLab) -> None:
    """The false pass: a session lost at 4 s, the scrape at the window's end (10 s) failed."""
    ok = promlab.scrape_times(T0, T0 + 20, failed=[T0 + 10])
    promlab.counter(
        "harness_sessions_lost_total", {"run": RUN}, [(t, 0.0 if t < T0 + 4 else 1.0) for t in ok]
    )
    # another run whose counter had already moved before its window: the failed scrape at the
    # window's end makes the change negative, below any bound
    promlab.counter(
        "harness_sessions_lost_total",
        {"run": "r2"},
        [(t, 5.0 if t < T0 + 4 else 6.0) for t in ok],
    )
    promlab.start()
    p = promlab.prom
    lost = "harness_sessions_lost_total"
    assert p.scalar(old_delta(lost, T0, T0 + 10)) == 0  # 1 session was lost: reads 0, passes
    assert p.scalar(old_delta(lost, T0, T0 + 9)) == 1  # one scrape earlier the loss is seen
    assert p.scalar(old_delta(lost, T0, T0 + 11)) == 1
    assert p.scalar(old_delta(lost, T0, T0 + 10, '{run="r2"}')) == -5
    # the mirror image: a failed scrape at the window's start reads the whole counter as change
    assert p.scalar(old_delta(lost, T0 + 10, T0 + 20, '{run="r2"}')) == 6  # nothing happened
    # a reading that does not depend on the last scrape succeeding sees the loss
    assert p.scalar(f'sum(last_over_time({lost}{{run="{RUN}"}}[10s] @ {T0 + 10:.3f}))') == 1


def test_range_selectors_are_closed_at_both_ends(promlab: PromLab) -> None:
    """Prometheus 2.x: a range [d] @ t holds the samples in [t - d, t], both ends included, so
    min_over_time(c[d] @ (b + d)) of a monotone counter is its first sample in [b, b + d]."""
    promlab.counter("c", {"run": RUN}, [(T0 + k, 10.0 + k) for k in range(11)])
    promlab.start()
    p = promlab.prom
    version = httpx.get(f"{promlab.url}/api/v1/status/buildinfo").json()["data"]["version"]
    assert version.startswith("2."), f"Prometheus {version}: 3.x made ranges left-open; recheck"
    c = f'c_total{{run="{RUN}"}}'
    assert p.scalar(f"count_over_time({c}[5s] @ {T0 + 5:.3f})") == 6  # T0 .. T0+5: 6 samples
    assert p.scalar(f"min_over_time({c}[5s] @ {T0 + 7:.3f})") == 12  # the sample at b = T0+2
    assert p.scalar(f"max_over_time({c}[5s] @ {T0 + 7:.3f})") == 17  # the sample at b + d
    assert p.scalar(f"min_over_time({c}[5s] @ {T0 + 7.5:.3f})") == 13  # b = T0+2.5: next one
    assert p.scalar(f"min_over_time({c}[4999ms] @ {T0 + 7:.3f})") == 13  # T0+2 just outside
    # a range starting before the first sample: the first sample
    assert p.scalar(f"min_over_time({c}[5s] @ {T0 + 2:.3f})") == 10
    # a subquery's steps are aligned to multiples of the step, each an instant read with lookback
    assert p.scalar(f"min_over_time(({c} >= 12)[5s:100ms] @ {T0 + 7:.3f})") == 12


def test_a_counter_reset_under_the_idioms(promlab: PromLab) -> None:
    """0..5 at T0..T0+5, the exporter restarts, 0..3 at T0+6..T0+9: the true increase over
    [T0+2, T0+9] is 3 (2 -> 5) + 3 (0 -> 3) = 6."""
    values = [0.0, 1, 2, 3, 4, 5, 0, 1, 2, 3]
    promlab.counter("c", {"run": RUN}, [(T0 + k, float(v)) for k, v in enumerate(values)])
    promlab.start()
    p = promlab.prom
    c = f'c_total{{run="{RUN}"}}'
    assert p.scalar(old_delta("c_total", T0 + 2, T0 + 9)) == 1  # 3 - 2: the reset hides 5
    assert p.scalar(old_delta("c_total", T0 + 4, T0 + 7)) == -3  # 1 - 4: negative passes `<=`
    assert p.scalar(f"min_over_time({c}[7s] @ {T0 + 9:.3f})") == 0  # post-reset, not 2
    assert p.scalar(f"resets({c}[7s] @ {T0 + 9:.3f})") == 1
    # increase() corrects for the reset; samples on both edges: no extrapolation
    assert p.scalar(f"increase({c}[7s] @ {T0 + 9:.3f})") == pytest.approx(6)
    assert p.scalar(f"resets({c}[5s] @ {T0 + 5:.3f})") == 0


def test_histogram_quantile_is_capped_by_the_top_finite_bucket(promlab: PromLab) -> None:
    """One request of 30 s (a +Inf-only observation) reads as 1 s, the top finite bound: a
    `latency: {max: 2s}` check over it passes."""
    empty = {"0.1": 0.0, "0.5": 0.0, "1.0": 0.0, "+Inf": 0.0}
    slow = {"0.1": 0.0, "0.5": 0.0, "1.0": 0.0, "+Inf": 1.0}
    fast = {"0.1": 0.0, "0.5": 1.0, "1.0": 1.0, "+Inf": 1.0}
    h = "harness_request_duration_seconds"
    for run, after in (("slow", (slow, 30.0)), ("fast", (fast, 0.3))):
        promlab.histogram(
            h,
            {"run": run},
            [(T0 + k, *((empty, 0.0) if k < 5 else after)) for k in range(11)],
        )
    promlab.start()
    p = promlab.prom

    def q95(run: str) -> float | None:
        return p.scalar(
            f"histogram_quantile(0.95, sum by (le) (increase("
            f'{h}_bucket{{run="{run}"}}[10s] @ {T0 + 10:.3f})))'
        )

    assert p.scalar(f'sum(increase({h}_count{{run="slow"}}[10s] @ {T0 + 10:.3f}))') == 1
    assert p.scalar(f'sum(increase({h}_sum{{run="slow"}}[10s] @ {T0 + 10:.3f}))') == 30
    assert q95("slow") == 1.0  # not 30, not +Inf
    assert q95("fast") == pytest.approx(0.1 + (0.5 - 0.1) * 0.95)  # interpolated in (0.1, 0.5]


def test_the_lab_refuses_series_prometheus_would_not_scrape() -> None:
    lab = PromLab()
    with pytest.raises(PromLabError, match="same millisecond"):
        lab.counter("c", {}, [(T0, 1.0), (T0 + 0.0001, 2.0)])
    with pytest.raises(PromLabError, match="not cumulative"):
        lab.histogram("h", {}, [(T0, {"0.1": 2.0, "+Inf": 1.0})])
    with pytest.raises(PromLabError, match="Inf"):
        lab.histogram("h", {}, [(T0, {"0.1": 0.0})])
    with pytest.raises(PromLabError, match=">= 0"):
        lab.counter("c", {}, [(T0, -1.0)])
    lab.gauge("g", {"a": "x"}, [(T0, 1.0)])
    with pytest.raises(PromLabError, match="already"):
        lab.gauge("g", {"a": "x"}, [(T0, 2.0)])
    with pytest.raises(PromLabError, match="already a gauge"):
        lab.counter("g", {}, [(T0, 1.0)])
    assert lab.scrape_times(T0, T0 + 3, failed=[T0 + 1]) == [T0, T0 + 2, T0 + 3]


def test_openmetrics_text_is_what_promtool_reads() -> None:
    lab = PromLab()
    lab.counter("c_total", {"b": 'q"\\', "a": "x"}, [(T0 + 1, 2.0), (T0 + 0.5, 1.0)])
    lab.histogram("h", {}, [(T0, {"+Inf": 1.0, "1.0": 1.0}, 0.5)])
    assert lab.openmetrics() == (
        "# TYPE c counter\n"
        'c_total{a="x",b="q\\"\\\\"} 1.0 1800000000.500\n'
        'c_total{a="x",b="q\\"\\\\"} 2.0 1800000001.000\n'
        "# TYPE h histogram\n"
        'h_bucket{le="1.0"} 1.0 1800000000.000\n'
        'h_bucket{le="+Inf"} 1.0 1800000000.000\n'
        "h_count 1.0 1800000000.000\n"
        "h_sum 0.5 1800000000.000\n"
        "# EOF\n"
    )


def test_stop_leaves_no_prometheus_and_the_client_reports_it_unreachable(
    promlab: PromLab,
) -> None:
    promlab.gauge("g", {"run": RUN}, [(T0, 1.0)])
    url = promlab.start()
    assert url.startswith("http://127.0.0.1:")
    assert promlab.startup_seconds is not None and promlab.startup_seconds < 10
    proc = promlab._proc
    assert proc is not None
    with pytest.raises(PromLabError, match="before start"):
        promlab.gauge("g2", {}, [(T0, 1.0)])
    promlab.stop()
    assert proc.poll() is not None
    from harness.observe.prom import Prometheus

    with pytest.raises(InfrastructureError, match="unreachable"):
        Prometheus(url, timeout=1).scalar("vector(1)")
    promlab.stop()  # idempotent
