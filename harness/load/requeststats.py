"""Per-request bookkeeping for the Locust plugin, kept in plain dicts and turned into Prometheus
families only when scraped. The hot path (one call per request) does no label lookup and takes
no lock: prometheus_client's labelled metrics take a lock per update, and under gevent's
monkey-patching that lock is a gevent lock, which made the plugin cost about 10% more CPU per
request than raw Locust (bench/load.py). Under gevent nothing preempts `record()`, and a
scrape iterates over snapshots of the dicts.

Two collectors:

`RequestStats`: requests and failures by name/method/status/node, the latency histograms (by
outcome, so successful latency is judged apart from failures) and the last answer per node.

`ClientState`: per simulated user (a key the plugin puts in every request's context), which LB
its last success came through and whether it has been served again since its last failure:
`harness_lb_switch_timestamp_seconds{lb}`, `harness_clients_served_again_timestamp_seconds`
and `harness_last_failure_timestamp_seconds`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable, Iterator
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from harness.observe import metrics

BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1,
    1.5,
    2,
    3,
    5,
    10,
    20,
    30,
    60,
    120,
)
INF = float("inf")
F = TypeVar("F", CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily)
# what one request updates: [requests, failures], its histogram, its last-answer key and its
# corrected-latency key (see RequestStats.record)
_Series = tuple[list[int], list[float], tuple[str, str], tuple[str, str]]


def _family(cls: type[F], metric: metrics.Metric) -> F:
    """An empty labelled family of the catalogue's `metric`."""
    return cls(metric.name, metric.help, labels=metric.labels)


def _histogram(
    metric: metrics.Metric,
    buckets: tuple[float, ...],
    data: dict[tuple[str, ...], list[float]],
) -> HistogramMetricFamily:
    family = _family(HistogramMetricFamily, metric)
    for key, h in list(data.items()):
        cumulative, out = 0.0, []
        for bound, count in zip((*buckets, INF), h[:-1], strict=True):
            cumulative += count
            out.append(("+Inf" if bound == INF else repr(float(bound)), cumulative))
        family.add_metric(list(key), out, h[-1])
    return family


class RequestStats(Collector):
    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self.counts: dict[tuple[str, str, str, str], list[int]] = {}  # -> [requests, failures]
        # (name, status, served_by, outcome) -> bucket counts, +Inf, sum
        self.hist: dict[tuple[str, ...], list[float]] = {}
        self.corrected: dict[tuple[str, ...], list[float]] = {}  # (name, outcome) -> same
        self.last: dict[tuple[str, str], float] = {}  # (served_by, outcome) -> unix time
        # the hot path's one lookup: (name, method, status, served_by, failed) -> the series
        # that request lands in (its counts, its histogram, its last-answer key, its corrected key)
        self._series: dict[tuple[str, str, str, str, bool], _Series] = {}

    def _observe(
        self, data: dict[tuple[str, ...], list[float]], key: tuple[str, ...], v: float
    ) -> None:
        h = data.get(key)
        if h is None:
            h = data[key] = [0.0] * (len(self.buckets) + 2)
        h[bisect_left(self.buckets, v)] += 1  # the first bound >= the value: `le` semantics
        h[-1] += v

    def _new_series(
        self, name: str, method: str, status: str, served_by: str, failed: bool
    ) -> _Series:
        outcome = "error" if failed else "ok"
        counts = self.counts.setdefault((name, method, status, served_by), [0, 0])
        hkey = (name, status, served_by, outcome)
        hist = self.hist.get(hkey)
        if hist is None:
            hist = self.hist[hkey] = [0.0] * (len(self.buckets) + 2)
        series = (counts, hist, (served_by, outcome), (name, outcome))
        self._series[(name, method, status, served_by, failed)] = series
        return series

    def record(
        self,
        name: str,
        method: str,
        status: str,
        served_by: str,
        seconds: float,
        failed: bool,
        now: float,
        intended: float | None = None,
    ) -> None:
        """One finished request. `intended`: when a fixed arrival rate meant to send it (the
        corrected latency is measured from there to `now`). One dict lookup finds every series
        the request lands in (the series appear in the export when first recorded, as before)."""
        series = self._series.get((name, method, status, served_by, failed))
        if series is None:
            series = self._new_series(name, method, status, served_by, failed)
        counts, hist, last_key, corrected_key = series
        counts[0] += 1
        if failed:
            counts[1] += 1
        hist[bisect_left(self.buckets, seconds)] += 1  # the first bound >= the value: `le`
        hist[-1] += seconds
        if intended is not None:
            self._observe(self.corrected, corrected_key, max(0.0, now - intended))
        self.last[last_key] = now

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily | GaugeMetricFamily]:
        requests = _family(CounterMetricFamily, metrics.REQUESTS)
        failures = _family(CounterMetricFamily, metrics.REQUEST_FAILURES)
        for ckey, (n, failed) in list(self.counts.items()):
            requests.add_metric(list(ckey), n)
            if failed:
                failures.add_metric(list(ckey), failed)
        yield requests
        yield failures
        yield _histogram(metrics.REQUEST_DURATION, self.buckets, self.hist)
        yield _histogram(metrics.REQUEST_CORRECTED_DURATION, self.buckets, self.corrected)
        last = _family(GaugeMetricFamily, metrics.LAST_RESPONSE)
        for lkey, ts in list(self.last.items()):
            last.add_metric(list(lkey), ts)
        yield last


class ClientState(Collector):
    """What each simulated user last saw, keyed by the user key the plugin puts in the request
    context. Plain dicts, no lock (see the module docstring).

    Served again: for every user, the time of its last failed request (`pending`, until a
    success follows) and the time of its first success after that failure (`served_again`).
    The export is the latest such instant over users, or +Inf while any user's most recent
    request failed; users that never failed contribute nothing (0 if none ever failed). A user
    that leaves mid-run (a ramp-down stops it) is retired: its served-again instant is kept, a
    failure it never recovered from is dropped with it (nobody is waiting for that answer)."""

    def __init__(self) -> None:
        self.lb: dict[Hashable, str] = {}  # user -> LB of its previous success
        self.pending: dict[
            Hashable, float
        ] = {}  # user -> last failure not yet followed by a success
        self.served_again: dict[
            Hashable, float
        ] = {}  # user -> first success after its last failure
        self.retired_served_again = 0.0
        self.lb_switch: dict[str, float] = {}  # lb -> first switch onto it of the latest wave
        self.last_switch: dict[str, float] = {}  # lb -> latest switch of a user onto it
        self.last_failure = 0.0

    def record(self, user: Hashable | None, ok: bool, lb: str, now: float) -> str | None:
        """One finished request of `user` (None: not from a known user; only the process-wide
        last failure is kept). Returns the LB the user's previous success came through when this
        success came through another one (a switch), else None."""
        if not ok:
            if now > self.last_failure:
                self.last_failure = now
            if user is not None:
                self.pending[user] = now
            return None
        if user is None:
            return None
        if self.pending and self.pending.pop(user, None) is not None:
            self.served_again[user] = now
        if lb:
            previous = self.lb.get(user)
            if previous != lb:
                self.lb[user] = lb
                if previous:
                    # The first switch of a wave onto `lb`: later users following the same
                    # failover keep it; a new wave starts once some user switched elsewhere since.
                    elsewhere = max(
                        (t for other, t in self.last_switch.items() if other != lb), default=0.0
                    )
                    if self.lb_switch.get(lb, 0.0) <= elsewhere:
                        self.lb_switch[lb] = now
                    self.last_switch[lb] = now
                    return previous
        return None

    def retire(self, user: Hashable) -> None:
        self.lb.pop(user, None)
        self.pending.pop(user, None)
        ts = self.served_again.pop(user, None)
        if ts is not None and ts > self.retired_served_again:
            self.retired_served_again = ts

    def served_again_at(self) -> float:
        if self.pending:
            return INF
        return max(max(self.served_again.values(), default=0.0), self.retired_served_again)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        switch = _family(GaugeMetricFamily, metrics.LB_SWITCH)
        for lb, ts in list(self.lb_switch.items()):
            switch.add_metric([lb], ts)
        yield switch
        served = metrics.CLIENTS_SERVED_AGAIN
        yield GaugeMetricFamily(served.name, served.help, value=self.served_again_at())
        failure = metrics.LAST_FAILURE
        yield GaugeMetricFamily(failure.name, failure.help, value=self.last_failure)
