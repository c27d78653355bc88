"""The load phase's reckoning: what Prometheus scrapes of the harness and Locust, when the load
ended (as Prometheus saw it), which workers dropped out, and each journaled fault as a judged
window."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness.errors import InfrastructureError
from harness.journal import Journal
from harness.load.process import LocustProcess
from harness.observe import metrics
from harness.observe.prom import Prometheus
from harness.plan.model import ScrapeTarget
from harness.run.subscribers import fault_targets
from harness.spec.models import Topology
from harness.verdict.promql import dur
from harness.verdict.windows import FaultSpan, Timeline, step_key


def final_scrape(prom: Prometheus, locust: LocustProcess, run_id: str, workers: int) -> float:
    """The end of the load: the instant of the first scrape that saw every Locust process
    finished. Locust is released only once every process has been scraped at or after that
    instant too, so each window's closing sample exists for every process."""
    processes = 1 + workers
    gauge = f'{metrics.LOAD_FINISHED.name}{{run="{run_id}"}}'
    finished = f"{gauge} > 0"
    seen = prom.wait_for(f"count({finished})", 30.0, lambda v: v is not None and v >= processes)
    # `timestamp()` of the selector itself is the sample's scrape time; of an expression
    # (`x > 0`) it would be the evaluation time, later than any sample.
    scraped = f"timestamp({gauge}) and ({finished})"
    end = prom.scalar(f"max({scraped})") if seen is not None else None
    if end is None:
        raise InfrastructureError(
            f"Locust's final figures never reached Prometheus: {why_unscraped(prom, locust)}"
        )
    after = f"count(timestamp({gauge}) >= {end:.3f})"
    if prom.wait_for(after, 15.0, lambda v: v is not None and v >= processes) is None:
        raise InfrastructureError(
            f"Prometheus stopped scraping Locust when the load ended: {why_unscraped(prom, locust)}"
        )
    return float(end)


WORKER_INSTANCES = "locust-(worker|remote)-[0-9]+"


def remote_instance(i: int) -> str:
    """The scrape target name of the i-th (from 1) worker joining from another machine."""
    return f"locust-remote-{i}"


def scrape_targets(
    harness: str, locust: list[str], remote_workers: Sequence[str] = ()
) -> list[ScrapeTarget]:
    """The run's own exporters: the harness's, the Locust master's and local workers' (in
    `locust`'s order), and the workers joining from other machines."""
    return (
        [ScrapeTarget("harness", harness, "harness")]
        + [
            ScrapeTarget("locust", addr, "locust" if i == 0 else f"locust-worker-{i}")
            for i, addr in enumerate(locust)
        ]
        + [
            ScrapeTarget("locust", addr, remote_instance(i))
            for i, addr in enumerate(remote_workers, 1)
        ]
    )


def reckon(
    journal: Journal,
    prom: Prometheus,
    locust: LocustProcess,
    topo: Topology,
    t0: float,
    say: Callable[[str], None],
    *,
    before_release: Callable[[], None] = lambda: None,
    effects: list[tuple[float, float | None]] | None = None,
    quiet: float = 2.0,
) -> Timeline:
    """When the load has run its course: the workers that dropped out, the load's end, then
    (`before_release`, e.g. the faults rolled back) Locust released, and the run's timeline.
    The last figures count only once Prometheus has scraped them after Locust stopped."""
    run_id = str(journal["run_id"])
    workers = worker_dropouts(prom, locust, run_id, t0, t0 + topo.load.duration)
    journal["workers"] = workers
    if workers.get("dropped"):
        say(
            f"load: worker(s) {', '.join(workers['dropped'])} dropped out mid-run; "
            f"{workers['alive']} of {workers['expected']} left (load.min_workers "
            f"{workers['min_workers']} holds)"
        )
    end = final_scrape(prom, locust, run_id, workers["alive"])
    before_release()
    locust.release()
    timeline = Timeline(t0, end, fault_spans(topo, journal["faults"], effects or [], quiet))
    timeline.dropped_workers = tuple(workers.get("dropped", ()))
    journal["load_ended_at"] = end
    return timeline


def worker_dropouts(
    prom: Prometheus, locust: LocustProcess, run_id: str, start: float, end: float
) -> dict[str, Any]:
    """Which workers dropped out between the load's start and end: a worker scrape target that
    failed a scrape, a local worker process that exited, or fewer workers than expected
    connected to the master. Raises InfrastructureError (inconclusive) when fewer than
    `load.min_workers` stayed; otherwise the account, for the journal and the console."""
    load = locust.load
    expected = load.total_workers
    report: dict[str, Any] = {"expected": expected, "min_workers": locust.min_workers}
    if not expected:
        return report | {"dropped": [], "alive": 0}
    # a second after the start (the master's gauge is sampled twice a second) to the end
    w, at = dur(max(1.0, end - start - 1.0)), f"@ {end:.3f}"
    sel = f'{{run="{run_id}",instance=~"{WORKER_INSTANCES}"}}'
    ups = {
        r["metric"].get("instance", "?"): float(r["value"][1])
        for r in prom.query(f"min_over_time(up{sel}[{w}] {at})")
    }
    dead_local = locust.dead_local_workers()
    dropped = sorted({i for i, v in ups.items() if v < 1} | set(dead_local))
    gauge = f'{metrics.WORKERS_CONNECTED.name}{{run="{run_id}"}}'
    connected = prom.scalar(f"min_over_time({gauge}[{w}] {at})")
    short = expected - int(connected) if connected is not None else 0
    lost = max(len(dropped), short)
    alive = expected - lost
    report.update(
        dropped=dropped,
        lowest_connected=connected,
        alive=alive,
    )
    errors = scrape_errors(prom, dropped)
    if errors:
        report["scrape_errors"] = errors
    if lost and alive < locust.min_workers:
        why = "; ".join(f"{i}: {e}" for i, e in errors.items())
        raise InfrastructureError(
            f"{lost} of {expected} Locust worker(s) dropped out mid-run "
            f"({', '.join(dropped) or 'seen by the master'}; at the lowest "
            f"{int(connected or 0)} connected): {alive} left, below load.min_workers "
            f"{locust.min_workers}, so the load was not what the topology asked for "
            "(inconclusive; set load.min_workers to accept fewer)"
            + (f". Scrapes: {why}" if why else "")
        )
    return report


def scrape_errors(prom: Prometheus, instances: list[str]) -> dict[str, str]:
    """Prometheus's last scrape error of each of these targets (why it is down)."""
    if not instances:
        return {}
    try:
        data = prom._get("/api/v1/targets", {"state": "active"})  # noqa: SLF001
    except InfrastructureError:
        return {}
    return {
        t["labels"].get("instance", "?"): str(t.get("lastError") or "up now")
        for t in data.get("activeTargets", [])
        if t["labels"].get("instance") in instances
    }


def why_unscraped(prom: Prometheus, locust: LocustProcess) -> str:
    """A complete account of why Prometheus lacks Locust's figures."""
    try:
        up = prom.targets_up()
    except InfrastructureError as exc:
        return f"{exc} (the run's Prometheus container died or hangs); nothing can be judged"
    down = sorted(t for t, ok in up.items() if not ok)
    tail = locust.log_tail().strip()
    parts = [
        f"scrape targets down: {', '.join(down)}" if down else "every scrape target is up",
        f"Locust's log ends: {tail}" if tail else "Locust logged nothing",
    ]
    return "; ".join(parts)


def fault_spans(
    topo: Topology,
    faults: list[dict[str, Any]],
    effects: list[tuple[float, float | None]],
    quiet: float = 2.0,
) -> dict[str, FaultSpan]:
    """The journal's faults as judged windows. `effects` are the recovery watcher's
    (armed at, steady again at) pairs: an instantaneous fault's effect ends at the first
    steady instant after it."""
    steps = {step_key(s.name): s for s in topo.chaos}
    spans = {}
    for f in faults:
        if not f["injected_at"]:
            continue
        holders = (f.get("before") or {}).get("vip_holders") or {}
        windowed = f.get("for") is not None
        end = (f["rolled_back_at"] or f["injected_at"]) if windowed else f["injected_at"]
        step = steps.get(step_key(f["name"]).split("#")[0])
        # Its effect is over once the watcher has seen the system steady for its quiet
        # period: clients that failed just before it have been served again by then.
        effect = next((done for armed, done in effects if armed >= f["injected_at"] - 0.001), None)
        if effect is not None:
            effect += quiet
        spans[f["name"]] = FaultSpan(
            f["injected_at"],
            end,
            kind=f["kind"],
            targets=fault_targets(str(f["target"])),
            windowed=windowed,
            vip_holders=tuple(sorted(holders.items())),
            window=getattr(step, "window", None),
            effect_end=None if windowed else effect,
        )
    return spans
