"""The judging phases of a run: the measurements made after the load (post-run), and the
verdict over everything Prometheus holds. `run` is the harness.run.core.Run being judged."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.errors import InfrastructureError
from harness.observe import hostcheck, metrics
from harness.report import collect
from harness.spec.compare import parse_tolerance
from harness.verdict.assertions import evaluate
from harness.verdict.compare import compare as compare_runs


def _running(container: Any) -> bool:
    try:
        container.reload()
        return bool(container.status == "running")
    except Exception:  # noqa: BLE001 - gone
        return False


def testinfra(run: Any, spec: Any, index: int) -> tuple[int, int]:
    """A docker run's testinfra assertion, against its service's running containers."""
    with ThreadPoolExecutor(max_workers=8) as pool:  # a Docker call each: side by side
        alive = pool.map(_running, run.stack.containers.values())
        running = {i for i, ok in zip(run.stack.containers, alive, strict=True) if ok}
    return hostcheck.run_module(
        Path(run.topology_file).parent / spec.module,
        run.plan,
        spec.hosts,
        run.run_dir,
        running,
        index=index,
    )


def timeline_of(run: Any) -> Any:
    """The run's timeline: a docker run's is reckoned in the background (the load's final
    scrape, Locust released) while the faults are rolled back and post-run measures."""
    reckoning = getattr(run, "reckoning", None)
    if run.timeline is None and reckoning is not None:
        run.timeline = reckoning.result()
    return run.timeline


def post_run(run: Any) -> None:
    """Measurements made after the load (acknowledged writes against the database,
    testinfra modules), published as gauges and awaited in Prometheus so the verdict stays
    PromQL. How each is measured is the run's: `run.check_writes()` and
    `run.check_testinfra(spec, index)` (containers here, machines over SSH on hosts).
    The testinfra modules start at once (the faults are rolled back), while the load's final
    scrape is still awaited; the writes are read once Locust has exited (released after that
    scrape), so no acknowledgement is still to come."""
    assert run.prom and run.exporter
    kinds = {a.kind for a in run.topo.assertions}
    if not kinds & {"no_lost_writes", "testinfra"}:
        return
    with run.journal.phase("post-run") as ph:
        # The writes check (a query in the database) and each testinfra module (a pytest
        # process) ask different things of the stack: they run side by side.
        timings: dict[str, float] = {}
        t0 = time.monotonic()

        def timed(name: str, fn: Any, *args: Any) -> Any:
            try:
                return fn(*args)
            finally:
                timings[name] = round(time.monotonic() - t0, 3)

        # A failed measurement (the final scrape, most likely) ends post-run at once: the
        # modules still running are not awaited (a docker run's stack is removed next, which
        # ends them), nor started.
        pool, abandon = ThreadPoolExecutor(max_workers=4), True
        try:
            # One report per assertion (its index); gauges by module and service, a pair
            # validation allows once, so each assertion is judged on its own tests.
            modules = [
                (
                    a.testinfra,
                    pool.submit(
                        timed,
                        f"testinfra {a.testinfra.module} on {a.testinfra.hosts}",
                        run.check_testinfra,
                        a.testinfra,
                        i,
                    ),
                )
                for i, a in enumerate(run.topo.assertions)
                if a.testinfra is not None
            ]
            timeline = timed("final scrape", timeline_of, run)
            if "no_lost_writes" in kinds:
                checked, missing, sample = timed("writes", run.check_writes)
                run.exporter.writes_checked.set(checked)
                run.exporter.writes_missing.set(missing)
                ph.update(writes_checked=checked, writes_missing=missing, missing_sample=sample)
            for spec, fut in modules:
                passed, failed = fut.result()
                run.exporter.testinfra_passed.labels(spec.module, spec.hosts).set(passed)
                run.exporter.testinfra_failed.labels(spec.module, spec.hosts).set(failed)
                key = f"{spec.module} on {spec.hosts}"
                ph.setdefault("testinfra", {})[key] = {"passed": passed, "failed": failed}
            abandon = False
        finally:
            pool.shutdown(wait=not abandon, cancel_futures=abandon)
        ph["timings"] = timings
        stamp = round(time.time(), 3)
        run.exporter.post_run.set(stamp)
        posted = f'{metrics.POST_RUN.name}{{run="{run.run_id}"}}'
        seen = seen_by(run.prom, posted, stamp)
        timings["seen by Prometheus"] = round(time.monotonic() - t0, 3)
        if seen is None:
            raise InfrastructureError("post-run measurements never reached Prometheus")
        timeline.post_at = run.prom.scalar(f"timestamp({posted})") or time.time()


def seen_by(prom: Any, expr: str, stamp: float, timeout: float = 30.0) -> float | None:
    """Polls (every 50 ms: the verdict waits on it) until Prometheus holds `stamp` for `expr`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = prom.scalar(expr)
        except InfrastructureError:
            value = None
        if value is not None and abs(value - stamp) < 0.01:
            return value
        time.sleep(0.05)
    return None


def verdict(run: Any) -> None:
    assert run.prom
    with run.journal.phase("verdict"):
        timeline_of(run)
        assert run.timeline is not None
        results = [
            evaluate(a, run.prom, run.run_id, run.timeline, run.topo) for a in run.topo.assertions
        ]
        if run.baseline is not None:
            gates, rows = compare_runs(results, run.baseline, tolerances(run))
            results = results + gates
            run.journal.data["compare"] = {
                "baseline_run": run.baseline.get("run_id"),
                "rows": rows,
            }
        run.journal["assertions"] = [r.as_dict() for r in results]
        run.journal["summary"] = collect.summary(run.prom, run.run_id, run.timeline)
        series = collect.series(run.prom, run.run_id, run.timeline)
        if run.watchers is not None:
            history = run.watchers.history()
            if history["vip_holder"]:
                changes = next(iter(history["vip_holder"].values()))
                series["vip_holder"] = collect.step_series(
                    changes, run.timeline.load_start - 2, run.timeline.load_end + 1
                )
            run.journal.data["watch"] = history
        run.journal["series"] = series
        run.journal["markers"] = collect.markers(results, run.timeline)
    run.results = results


def tolerances(run: Any) -> dict[str, tuple[str, float]]:
    spec_cmp = getattr(run.topo, "compare", None)
    given = dict(spec_cmp.tolerance) if spec_cmp is not None else {}
    return {key: parse_tolerance(value) for key, value in given.items()}
