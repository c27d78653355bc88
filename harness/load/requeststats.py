"""Per-request bookkeeping for the Locust plugin, kept in plain dicts and turned into Prometheus
families only when scraped. The hot path (one call per request) does no label lookup and takes
no lock: prometheus_client's labelled metrics take a lock per update, and under gevent's
monkey-patching that lock is a gevent lock, which made the plugin cost about 10% more CPU per
request than raw Locust (bench/load.py). Under gevent nothing preempts `record()`, and a
scrape iterates over snapshots of the dicts."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)


class RequestStats(Collector):
    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self.counts: dict[tuple[str, str, str, str], list[int]] = {}  # -> [requests, failures]
        self.hist: dict[tuple[str, str, str], list[float]] = {}  # -> bucket counts, +Inf, sum
        self.last: dict[tuple[str, str], float] = {}  # (served_by, outcome) -> unix time

    def record(
        self,
        name: str,
        method: str,
        status: str,
        served_by: str,
        seconds: float,
        failed: bool,
        now: float,
    ) -> None:
        key = (name, method, status, served_by)
        c = self.counts.get(key)
        if c is None:
            c = self.counts[key] = [0, 0]
        c[0] += 1
        if failed:
            c[1] += 1
        hkey = (name, status, served_by)
        h = self.hist.get(hkey)
        if h is None:
            h = self.hist[hkey] = [0.0] * (len(self.buckets) + 2)
        h[bisect_left(self.buckets, seconds)] += 1  # the first bound >= the value: `le` semantics
        h[-1] += seconds
        self.last[(served_by, "error" if failed else "ok")] = now

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily | GaugeMetricFamily]:
        labels = ["name", "method", "status", "served_by"]
        requests = CounterMetricFamily(
            "harness_requests", "Requests sent by the load.", labels=labels
        )
        failures = CounterMetricFamily(
            "harness_request_failures", "Requests that failed (by Locust's rules).", labels=labels
        )
        for ckey, (n, failed) in list(self.counts.items()):
            requests.add_metric(list(ckey), n)
            if failed:
                failures.add_metric(list(ckey), failed)
        yield requests
        yield failures
        hist = HistogramMetricFamily(
            "harness_request_duration_seconds",
            "Response time.",
            labels=["name", "status", "served_by"],
        )
        for hkey, h in list(self.hist.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip((*self.buckets, float("inf")), h[:-1], strict=True):
                cumulative += count
                buckets.append(
                    ("+Inf" if bound == float("inf") else repr(float(bound)), cumulative)
                )
            hist.add_metric(list(hkey), buckets, h[-1])
        yield hist
        last = GaugeMetricFamily(
            "harness_last_response_timestamp_seconds",
            "Last response seen from a node (served_by; 'none' = no node named it: LB or connection "
            "errors), by outcome.",
            labels=["served_by", "outcome"],
        )
        for lkey, ts in list(self.last.items()):
            last.add_metric(list(lkey), ts)
        yield last
