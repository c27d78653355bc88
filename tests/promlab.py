"""A real Prometheus on loopback, fed with synthetic series, for tests of PromQL semantics.

    from tests.promlab import BASE as T0, PromLab
    lab = PromLab()                                   # scrape interval 1 s, lookback 999 ms
    t = lab.scrape_times(T0, T0 + 10, failed=[T0 + 10])
    lab.counter("harness_sessions_lost_total", {"run": "r1"}, [(x, 1.0) for x in t])
    lab.scrape_target("locust", "gen-1", "r1", [(x, 1.0) for x in t] + [(T0 + 10, 0.0)])
    lab.start()                                       # promtool blocks + prometheus, ~0.1 s
    lab.prom.scalar('sum(harness_sessions_lost_total{run="r1"} @ 1800000010)')  # None: stale

How: `start()` writes the series as one OpenMetrics file, turns it into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics`, and starts `prometheus` on 127.0.0.1 (a free
port) over those blocks with no scrape target, a 100-year retention and the lab's lookback.
It returns once /-/ready answers and a query sees every series written. Measured with Debian's
Prometheus 2.42: promtool ~0.05 s and Prometheus ready ~0.05 s, so `start()` takes ~0.11 s for
a few series (0.23 s for 100 series x 600 samples, 1.5 s for 1000 x 600) and `stop()` ~5 ms.
That is why the `promlab` fixture (tests/unit/conftest.py) starts one Prometheus per test
rather than sharing one per module: isolation costs about a tenth of a second.

Staleness. A real scrape that fails writes a staleness marker for every series of the target,
so from a failed scrape until the next successful one the series is absent from instant
queries. OpenMetrics text cannot carry a staleness marker (Prometheus's StaleNaN is a NaN
payload that "NaN" does not parse to), so the lab emulates it with the lookback delta instead:
with scrapes every `scrape_interval` seconds on a millisecond grid and a lookback of
`scrape_interval - 1 ms` (the default), a series is present at any instant after a successful
scrape until the next scrape time, and absent from a missing (failed) scrape until the next
successful one, exactly as with markers. Write samples at `scrape_times()` (skip the failed
ones: a gap = no sample) for that to hold; `lookback=` overrides it (e.g. 300 for Prometheus's
default 5 m, to see what markers hide).

Timestamps are unix seconds, kept to the millisecond. `BASE` (1_800_000_000, on a 2 h block
boundary) is a convenient origin; any time works, since the retention is relative to the
newest block and set to 100 years.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.observe.prom import Prometheus

BASE = 1_800_000_000.0

_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

HistogramSample = tuple[float, Mapping[str, float]] | tuple[float, Mapping[str, float], float]


class PromLabError(RuntimeError):
    """The lab could not be built or started (bad series, promtool or prometheus failed)."""


def missing_binaries(prometheus: str = "prometheus", promtool: str = "promtool") -> list[str]:
    """The binaries among `prometheus` and `promtool` that are not on PATH."""
    return [b for b in (prometheus, promtool) if shutil.which(b) is None]


def _ms(t: float) -> int:
    return round(t * 1000)


def _ts(ms: int) -> str:
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    return f"{sign}{ms // 1000}.{ms % 1000:03d}"


def _value(v: float) -> str:
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


@dataclass
class _Family:
    name: str
    kind: str  # counter, gauge, histogram
    # label set (sorted items) -> {timestamp ms: value}; histogram value: ({le: count}, sum, count)
    series: dict[tuple[tuple[str, str], ...], dict[int, Any]] = field(default_factory=dict)


def _set_pdeathsig() -> None:  # runs in the child: die with the test process, even on SIGKILL
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _kill(proc: subprocess.Popen[bytes], directory: Path | None = None) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if directory is not None:  # a lab dropped without stop(): its data too
        shutil.rmtree(directory, ignore_errors=True)


class PromLab:
    """Synthetic series served by a real Prometheus on loopback. Add series, `start()`, query
    through `prom` (harness.observe.prom.Prometheus), `stop()` (or use it as a context manager)."""

    def __init__(
        self,
        *,
        scrape_interval: float = 1.0,
        lookback: float | None = None,
        prometheus: str = "prometheus",
        promtool: str = "promtool",
        start_timeout: float = 20.0,
    ) -> None:
        if scrape_interval <= 0.001:
            raise ValueError("scrape_interval must be more than 1 ms")
        self.scrape_interval = scrape_interval
        self.lookback = scrape_interval - 0.001 if lookback is None else lookback
        if _ms(self.lookback) < 1:
            raise ValueError("lookback must be at least 1 ms")
        self.prometheus_bin = prometheus
        self.promtool_bin = promtool
        self.start_timeout = start_timeout
        self.url: str | None = None
        self.startup_seconds: float | None = None  # promtool + prometheus until data is visible
        self._families: dict[str, _Family] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._prom: Prometheus | None = None
        self._finalizer: weakref.finalize[Any, PromLab] | None = None

    # ---- series ---------------------------------------------------------------------------

    def scrape_times(
        self, start: float, end: float, *, failed: Iterable[float] = ()
    ) -> list[float]:
        """Scrape instants start, start + interval, ... <= end (ms grid), minus `failed` ones."""
        step, first, last = _ms(self.scrape_interval), _ms(start), _ms(end)
        skip = {_ms(t) for t in failed}
        return [ms / 1000 for ms in range(first, last + 1, step) if ms not in skip]

    def counter(
        self, name: str, labels: Mapping[str, str], samples: Sequence[tuple[float, float]]
    ) -> None:
        """A counter, stored as `<name>_total` (`name` may already end in `_total`), as a
        client library exposes it. Values may drop (a reset: the exporter restarted)."""
        family = name.removesuffix("_total")
        for t, v in samples:
            if not float(v) >= 0:
                raise PromLabError(f"{name}: counter value {v} at {t} is not >= 0")
        self._add(family, "counter", labels, {_ms(t): float(v) for t, v in samples}, len(samples))

    def gauge(
        self, name: str, labels: Mapping[str, str], samples: Sequence[tuple[float, float]]
    ) -> None:
        self._add(name, "gauge", labels, {_ms(t): float(v) for t, v in samples}, len(samples))

    def histogram(
        self, name: str, labels: Mapping[str, str], samples: Sequence[HistogramSample]
    ) -> None:
        """A classic histogram: each sample is (t, {le: cumulative count}) or (t, {le: count},
        sum). `le` keys are written as given (e.g. "0.1", "1.0", "+Inf"); "+Inf" is required
        and gives `_count`; counts must not decrease with `le`. `_sum` defaults to 0."""
        if "le" in labels:
            raise PromLabError(f"{name}: `le` is set per bucket, not in labels")
        points: dict[int, Any] = {}
        for sample in samples:
            t, buckets = sample[0], sample[1]
            total = float(sample[2]) if len(sample) > 2 else 0.0
            try:
                bounds = sorted((float(le), le, float(c)) for le, c in buckets.items())
            except ValueError as exc:
                raise PromLabError(f"{name}: bad bucket bound at {t}: {exc}") from None
            if not bounds or bounds[-1][0] != math.inf:
                raise PromLabError(f'{name}: the sample at {t} has no "+Inf" bucket')
            counts = [c for _, _, c in bounds]
            if any(b < a for a, b in zip(counts, counts[1:], strict=False)) or counts[0] < 0:
                raise PromLabError(f"{name}: bucket counts at {t} are not cumulative: {buckets}")
            points[_ms(t)] = ({le: c for _, le, c in bounds}, total, counts[-1])
        self._add(name, "histogram", labels, points, len(samples))

    def scrape_target(
        self, job: str, instance: str, run: str, up_samples: Sequence[tuple[float, float]]
    ) -> None:
        """`up{job, instance, run}` as Prometheus writes it: one sample per scrape, 1 for a
        successful scrape and 0 for a failed one; no sample where no scrape happened."""
        for t, v in up_samples:
            if v not in (0, 1):
                raise PromLabError(f"up must be 0 or 1, got {v} at {t}")
        self.gauge("up", {"job": job, "instance": instance, "run": run}, up_samples)

    def _add(
        self, name: str, kind: str, labels: Mapping[str, str], points: dict[int, Any], n: int
    ) -> None:
        if self._proc is not None:
            raise PromLabError("series must be added before start()")
        if not _METRIC.match(name):
            raise PromLabError(f"invalid metric name {name!r}")
        for k, v in labels.items():
            if not _LABEL.match(k) or k.startswith("__"):
                raise PromLabError(f"{name}: invalid label name {k!r}")
            if not isinstance(v, str):
                raise PromLabError(f"{name}: label {k} must be a string, got {v!r}")
        if len(points) != n:
            raise PromLabError(f"{name}{_labels(labels)}: two samples at the same millisecond")
        fam = self._families.setdefault(name, _Family(name, kind))
        if fam.kind != kind:
            raise PromLabError(f"{name} is already a {fam.kind}, not a {kind}")
        key = tuple(sorted(labels.items()))
        series = fam.series.setdefault(key, {})
        if series.keys() & points.keys():
            raise PromLabError(f"{name}{_labels(labels)}: a sample at that time already exists")
        series.update(points)

    # ---- exposition -------------------------------------------------------------------------

    def openmetrics(self) -> str:
        """The series as one OpenMetrics text (families contiguous, each series by time)."""
        out: list[str] = []
        for fam in self._families.values():
            out.append(f"# TYPE {fam.name} {fam.kind}")
            for key, points in sorted(fam.series.items()):
                labels = dict(key)
                for ms in sorted(points):
                    ts = _ts(ms)
                    if fam.kind == "counter":
                        out.append(f"{fam.name}_total{_labels(labels)} {_value(points[ms])} {ts}")
                    elif fam.kind == "gauge":
                        out.append(f"{fam.name}{_labels(labels)} {_value(points[ms])} {ts}")
                    else:
                        buckets, total, count = points[ms]
                        for le, c in buckets.items():
                            bl = _labels({**labels, "le": le})
                            out.append(f"{fam.name}_bucket{bl} {_value(c)} {ts}")
                        out.append(f"{fam.name}_count{_labels(labels)} {_value(count)} {ts}")
                        out.append(f"{fam.name}_sum{_labels(labels)} {_value(total)} {ts}")
        out.append("# EOF")
        return "\n".join(out) + "\n"

    def _series_count(self) -> int:
        n = 0
        for fam in self._families.values():
            for points in fam.series.values():
                if fam.kind == "histogram" and points:
                    n += len({le for buckets, *_ in points.values() for le in buckets}) + 2
                elif points:
                    n += 1
        return n

    def _span_ms(self) -> tuple[int, int] | None:
        times = [ms for f in self._families.values() for p in f.series.values() for ms in p]
        return (min(times), max(times)) if times else None

    # ---- the server -------------------------------------------------------------------------

    @property
    def prom(self) -> Prometheus:
        """The production client on this lab's Prometheus (after start())."""
        if self._prom is None:
            raise PromLabError("the lab is not started")
        return self._prom

    def start(self) -> str:
        """Build the blocks, start Prometheus on loopback, wait until it serves every series;
        return its URL."""
        if self._proc is not None:
            raise PromLabError("already started")
        missing = missing_binaries(self.prometheus_bin, self.promtool_bin)
        if missing:
            raise PromLabError(f"{' and '.join(missing)} not found (./install.sh --dev)")
        t0 = time.monotonic()
        self._dir = Path(tempfile.mkdtemp(prefix="promlab-"))
        data = self._dir / "data"
        data.mkdir()
        span = self._span_ms()
        if span is not None:
            om = self._dir / "series.om"
            om.write_text(self.openmetrics())
            res = subprocess.run(
                [
                    self.promtool_bin,
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    "-q",
                    str(om),
                    str(data),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if res.returncode != 0:
                self._cleanup()
                raise PromLabError(f"promtool could not import the series: {res.stderr.strip()}")
        (self._dir / "prometheus.yml").write_text("global: {}\n")
        for _attempt in range(5):
            port = _free_port()
            err = self._launch(port, data)
            if err is None:
                break
            if "address already in use" not in err:
                self._cleanup()
                raise PromLabError(f"prometheus did not start: {err}")
        else:
            self._cleanup()
            raise PromLabError("prometheus found no free port on 127.0.0.1")
        try:
            self._wait_for_data(span)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self.prom.url

    def _launch(self, port: int, data: Path) -> str | None:
        """Start prometheus on `port`; None once /-/ready answers, else why it failed."""
        assert self._dir is not None
        log = self._dir / "prometheus.log"
        with log.open("wb") as logf:
            proc = subprocess.Popen(
                [
                    self.prometheus_bin,
                    f"--config.file={self._dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={data}",
                    "--storage.tsdb.retention.time=100y",
                    f"--web.listen-address=127.0.0.1:{port}",
                    f"--query.lookback-delta={_ms(self.lookback)}ms",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=logf,
                cwd=self._dir,
                preexec_fn=_set_pdeathsig,
            )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _kill, proc, self._dir)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=2) as http:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    self._proc = None
                    self._finalizer.detach()
                    return f"exit {proc.returncode}: {_tail(log)}"
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{url}/-/ready").status_code == 200:
                        self.url = url
                        self._prom = Prometheus(url)
                        return None
                time.sleep(0.01)
        _kill(proc)
        self._proc = None
        self._finalizer.detach()
        return f"not ready after {self.start_timeout:g}s: {_tail(log)}"

    def _wait_for_data(self, span: tuple[int, int] | None) -> None:
        if span is None:
            return
        expected = self._series_count()
        first, last = span
        expr = f'count(last_over_time({{__name__=~".+"}}[{last - first + 1}ms] @ {_ts(last)}))'
        deadline = time.monotonic() + self.start_timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.prom.scalar(expr)
            if seen == expected:
                return
            time.sleep(0.02)
        raise PromLabError(f"prometheus serves {seen} series, {expected} were written")

    def stop(self) -> None:
        """Stop Prometheus and remove its data (idempotent)."""
        if self._prom is not None:
            self._prom.http.close()
            self._prom = None
        if self._proc is not None:
            _kill(self._proc)
            self._proc = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        self._cleanup()

    def _cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> PromLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(log: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


__all__ = ["BASE", "PromLab", "PromLabError", "missing_binaries"]
