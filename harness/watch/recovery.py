"""Decides when the system is steady again after a fault: every LB (HAProxy or Nginx) reports
all its backends UP, every VIP is on its intended master, every container runs, and clients saw
no failure for `quiet` seconds. The instant is exported (`harness_recovered_timestamp_seconds`).

Client failures are `harness_request_failures_total` summed over every Locust process (the
master and each worker: with workers the master sends nothing). A process that does not answer
hides its failures, so the quiet stretch counts only once every process has answered after it.

Each `arm` (an instantaneous fault, or the end of a fault window) opens a span; it closes at the
first steady instant after its start (`spans`). Once steady, the watcher keeps looking until the
load ends: a problem or a client failure then is a relapse (`relapses`), and a new span opens at
that instant. While a fault window is open (`hold` ... `release`) its effects are no relapse."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import httpx
from prometheus_client.parser import text_string_to_metric_families

from harness.observe import metrics

FAILURES = metrics.REQUEST_FAILURES.total
IDLE = 30.0  # seconds without a tick after which the background sampler ends


def failures_total(text: str) -> float:
    """The sum of `harness_request_failures_total` over its series in a metrics page (0 when
    the page has none: no request failed yet, or a Locust master whose workers send)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == FAILURES:
                total += float(sample.value)
    return total


class Layout(Protocol):
    """Where the instances are: a RunPlan, or runtime: hosts' machines (harness/remote/steady.py).
    Each instance has `.instance` and `.service`; a service's are in priority order."""

    def instances(self, service: str) -> Sequence[Any]: ...

    def container(self, instance: str) -> Any: ...


class RecoveryWatcher:
    def __init__(
        self,
        plan: Layout,
        watchers: Any,
        exporter: Any,
        locust_metrics_urls: str | Sequence[str],
        quiet: float = 2.0,
        *,
        period: float = 0.25,
        background: bool = True,
    ) -> None:
        """`locust_metrics_urls`: the metrics URL of every Locust process (master and
        workers). `background`: fetch them from a thread of its own (`tick` never waits on
        HTTP); False fetches them inside `tick` (tests)."""
        self.plan, self.watchers, self.exporter = plan, watchers, exporter
        urls = (
            [locust_metrics_urls] if isinstance(locust_metrics_urls, str) else locust_metrics_urls
        )
        self.urls = list(urls)
        self.quiet, self.period, self.background = quiet, period, background
        self.armed_at: float | None = None
        self.recovered_at: float | None = None
        self.spans: list[tuple[float, float | None]] = []  # (armed_at, recovered_at) per arm
        self.relapses: list[tuple[float, str]] = []  # (instant, why)
        self.holds = 0  # fault windows open
        self.why = "no fault rolled back yet"
        self.removed_at: dict[str, float] = {}  # instance -> when a fault removed it on purpose
        self.lbs_in_front: dict[str, list[str]] = {}  # backend service -> its LB instances
        # targets of instantaneous faults (a kill), left down on purpose
        self.expected_down: set[str] = set()
        # client figures, per URL
        self.totals: dict[str, float] = {}
        self.first_seen: dict[str, float] = {}  # since when its counter is known without a gap
        self.last_seen: dict[str, float] = {}
        self.failed_at: float | None = None  # last sample that showed new failures
        self.clear_since: float | None = None  # since when no steady problem was seen
        self.last_check = 0.0
        self.last_tick = time.time()  # the sampler ends by itself when ticks stop coming
        self.relapse_failed_at: float | None = None  # failures already counted as a relapse
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.sampler: threading.Thread | None = None
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(8, len(self.urls))))
        self.http = httpx.Client(timeout=max(0.2, min(1.0, 2 * period)), trust_env=False)

    # ------------------------------------------------------------------ the runner's calls

    def arm(self, at: float) -> None:
        """Start looking (again) at `at`: an instantaneous fault was injected, or a fault
        window ended."""
        with self.lock:
            self.armed_at, self.recovered_at = at, None
            self.spans.append((at, None))
            if self.failed_at is not None:
                self.relapse_failed_at = self.failed_at
        self.exporter.recovered.set(0)
        self._ensure_sampler()

    def _ensure_sampler(self) -> None:
        self.last_tick = time.time()
        idle = self.sampler is None or not self.sampler.is_alive()
        if self.background and idle and not self.stopped.is_set():
            self.sampler = threading.Thread(target=self._sample_loop, name="recovery", daemon=True)
            self.sampler.start()

    def hold(self, at: float) -> None:
        """A fault window opened at `at`: until its `release`, trouble is the fault's doing."""
        with self.lock:
            self.holds += 1

    def release(self, at: float) -> None:
        """A fault window closed at `at`: recovery starts there."""
        with self.lock:
            self.holds = max(0, self.holds - 1)
        self.arm(at)

    def summary(self) -> dict[str, Any]:
        """The journal's `recovery` block."""
        with self.lock:
            return {
                "recovered_at": self.recovered_at,
                "last_problem": self.why,
                "spans": list(self.spans),
                "relapses": list(self.relapses),
            }

    def stop(self) -> None:
        self.stopped.set()
        self.pool.shutdown(wait=False)
        self.http.close()

    # ------------------------------------------------------------------ client figures

    def _fetch(self, url: str) -> float | None:
        try:
            r = self.http.get(url)
            r.raise_for_status()
            return failures_total(r.text)
        except (httpx.HTTPError, ValueError, RuntimeError):  # RuntimeError: closed client
            return None

    def poll(self, now: float | None = None) -> None:
        """Fetch every Locust process's failure count (concurrently) and record it."""
        at = time.time() if now is None else now
        values = list(self.pool.map(self._fetch, self.urls))
        for url, value in zip(self.urls, values, strict=True):
            if value is not None:
                self.record(url, value, at)

    def record(self, url: str, value: float, at: float) -> None:
        with self.lock:
            last = self.totals.get(url)
            if last is None or value < last:  # first figure, or the process started again
                self.first_seen[url] = at
            elif value > last:
                self.failed_at = at if self.failed_at is None else max(self.failed_at, at)
            self.totals[url] = value
            self.last_seen[url] = at

    def _sample_loop(self) -> None:
        while not self.stopped.is_set():
            t = time.time()
            if t - self.last_tick > IDLE:
                return  # nobody ticks any more (the load is over): `tick` starts it again
            try:
                self.poll(t)
            except RuntimeError:  # the pool was shut down
                return
            self.stopped.wait(max(0.0, self.period - (time.time() - t)))

    # ------------------------------------------------------------------ steadiness

    def steady_problems(self) -> list[str]:
        problems = []
        for lb, servers in self.watchers.backend_states().items():
            down = sorted(
                s for s, state in servers.items() if state != "UP" and s not in self.expected_down
            )
            if down:
                problems.append(f"{lb} reports {', '.join(down)} DOWN")
        for service, holder in self.watchers.vip_holders().items():
            alive = [
                c.instance
                for c in self.plan.instances(service)
                if c.instance not in self.expected_down
            ]
            intended = alive[0] if alive else None  # the highest-priority LB still meant to run
            if holder != intended:
                problems.append(f"VIP of {service} on {holder or 'nobody'}, not {intended}")
        stopped = [i for i in self.watchers.not_running() if i not in self.expected_down]
        if stopped:
            problems.append(f"not running: {', '.join(sorted(stopped))}")
        problems += self._not_ejected()
        silent = getattr(self.watchers, "silent", None)  # runtime: hosts: silence is no health
        if silent is not None:
            problems += silent()
        return problems

    def _not_ejected(self) -> list[str]:
        """A node removed on purpose is no problem once every LB in front of it has marked it
        DOWN (its own log line) since it was removed; until then the fault's effect is not over."""
        out = []
        for inst, since in sorted(self.removed_at.items()):
            if inst not in self.expected_down:
                continue
            try:
                service = self.plan.container(inst).service
            except StopIteration:
                continue
            for w in getattr(self.watchers, "logs", []):
                if w.instance in self.lbs_in_front.get(service, ()) and not any(
                    what == "backend" and name == inst and state == "DOWN" and ts >= since - 0.5
                    for ts, what, name, state in list(w.events)
                ):
                    out.append(f"{w.instance} has not marked {inst} DOWN yet")
        return out

    def _client_gaps(self, since: float, now: float) -> list[str]:
        """Why client figures do not prove `quiet` failure-free seconds from `since`."""
        if not self.urls:
            return ["no Locust metrics to read"]
        gaps = []
        for url in self.urls:
            first, last = self.first_seen.get(url), self.last_seen.get(url)
            if first is None or last is None:
                gaps.append(f"no figures from {url}")
            elif now - last > 2 * self.period:
                gaps.append(f"no figures from {url} for {now - last:.1f}s")
            elif last < since + self.quiet <= now:
                gaps.append(f"waiting for figures from {url}")
        if self.failed_at is not None and self.failed_at > now - self.quiet:
            gaps.append(f"client failures in the last {self.quiet:g}s")
        return gaps

    def _steady_from(self, armed: float) -> float:
        """The earliest instant after `armed` from which nothing has gone wrong."""
        marks = [armed, *self.first_seen.values()]
        if self.clear_since is not None:
            marks.append(self.clear_since)
        if self.failed_at is not None:
            marks.append(self.failed_at)
        return max(marks)

    def tick(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if self.armed_at is None or now - self.last_check < self.period:
            return
        self.last_check = now
        if self.background:
            self._ensure_sampler()
        else:
            self.poll(now)
        problems = self.steady_problems()
        with self.lock:
            if problems:
                self.clear_since = None
            elif self.clear_since is None:
                self.clear_since = now
            if self.recovered_at is not None:
                self._watch_for_relapse(now, problems)
                return
            self._try_recover(now, problems)

    def _try_recover(self, now: float, problems: list[str]) -> None:
        reasons = list(problems)
        assert self.armed_at is not None
        since = self._steady_from(self.armed_at)
        reasons += self._client_gaps(since, now)
        if not reasons and now - since < self.quiet:
            reasons.append(f"steady for {now - since:.2f}s, not yet {self.quiet:g}s")
        self.why = "; ".join(reasons)
        if reasons:
            return
        for i, (armed, recovered) in enumerate(self.spans):
            if recovered is None:
                self.spans[i] = (armed, max(armed, self._steady_from(armed)))
        self.recovered_at = self.spans[-1][1]
        self.relapse_failed_at = self.failed_at
        self.exporter.recovered.set(self.recovered_at)

    def _watch_for_relapse(self, now: float, problems: list[str]) -> None:
        new_failures = self.failed_at is not None and self.failed_at != self.relapse_failed_at
        if self.holds or not (problems or new_failures):
            self.relapse_failed_at = self.failed_at  # a fault window's failures are its own
            return
        at = now
        why = list(problems)
        if new_failures:
            assert self.failed_at is not None
            at = min(at, self.failed_at)
            why.append("client failures")
        self.relapse_failed_at = self.failed_at
        self.relapses.append((at, "; ".join(why)))
        self.why = "relapse: " + "; ".join(why)
        self.armed_at, self.recovered_at = at, None
        self.spans.append((at, None))
        self.exporter.recovered.set(0)
        gauge = getattr(self.exporter, "relapse", None)
        if gauge is not None:
            gauge.set(at)
