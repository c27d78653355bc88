"""The load phase's reckoning: what Prometheus scrapes of the harness and Locust, when the load
ended (as Prometheus saw it), which workers dropped out, and each journaled fault as a judged
window."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
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


class Reckoning:
    """The load's end, reckoned while the run goes on. `start()`: the workers that dropped out,
    then every local Locust process stopped (read from its own endpoint: from then on it sends
    nothing, so faults can be rolled back and the stack measured), then, in a thread of its own,
    Prometheus's final scrape of every process and Locust released. `result()` waits for that
    and is the run's timeline. Give it a Prometheus client of its own (the thread uses it).

    `finished` (after `start()`): every live local process reported its stop in time; only
    then may the windowed faults rolled back at the load's end (`ended_by_load`, their names) be
    rolled back before the final scrape: their windows still close at the load's end, so the
    last requests before it count in them, as when rollback came after it."""

    def __init__(
        self,
        journal: Journal,
        prom: Prometheus,
        locust: LocustProcess,
        topo: Topology,
        t0: float,
        say: Callable[[str], None],
        *,
        effects: list[tuple[float, float | None]] | None = None,
        quiet: float = 2.0,
    ) -> None:
        self.journal, self.prom, self.locust, self.topo = journal, prom, locust, topo
        self.t0, self.say, self.effects, self.quiet = t0, say, effects or [], quiet
        self.ended_by_load: set[str] = set()
        self.finished = False  # start(): every live local Locust process reported its stop
        self._end: float | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Reckoning:
        run_id = str(self.journal["run_id"])
        workers = worker_dropouts(
            self.prom, self.locust, run_id, self.t0, self.t0 + self.topo.load.duration
        )
        if workers.get("dropped"):
            self.say(
                f"load: worker(s) {', '.join(workers['dropped'])} dropped out mid-run; "
                f"{workers['alive']} of {workers['expected']} left (load.min_workers "
                f"{workers['min_workers']} holds)"
            )
        self.finished = self.locust.wait_finished()
        self.journal["workers"] = workers | {"stop_reported": self.finished}
        if not self.finished:
            self.say(
                "load: a Locust process did not report its stop in time: the faults are "
                "rolled back only after the final scrape"
            )
        self._thread = threading.Thread(
            target=self._final, args=(run_id, workers["alive"]), name="final-scrape", daemon=True
        )
        self._thread.start()
        return self

    def _final(self, run_id: str, alive: int) -> None:
        try:
            self._end = final_scrape(self.prom, self.locust, run_id, alive)
            self.locust.release()
        except BaseException as exc:  # noqa: BLE001 - raised again by result()
            self._error = exc

    def scraped(self, timeout: float = 90.0) -> float:
        """The load's end, once Prometheus holds the final figures and Locust is released
        (raises what the final scrape raised)."""
        assert self._thread is not None, "start() first"
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise InfrastructureError(f"the load's final scrape took over {timeout:g}s")
        if self._error is not None:
            raise self._error
        assert self._end is not None
        return self._end

    def result(self, timeout: float = 90.0) -> Timeline:
        """The timeline, once Prometheus holds the final figures and Locust is released."""
        self.scraped(timeout)
        assert self._end is not None
        spans = fault_spans(
            self.topo,
            self.journal["faults"],
            self.effects,
            self.quiet,
            ended_by_load=(self.ended_by_load, self._end),
        )
        timeline = Timeline(self.t0, self._end, spans)
        timeline.dropped_workers = tuple(self.journal["workers"].get("dropped", ()))
        self.journal["load_ended_at"] = self._end
        return timeline


def reckon(
    *args: Any,
    before_release: Callable[[], object] = lambda: None,
    ended_by_load: Collection[str] = (),
    **kwargs: Any,
) -> Timeline:
    """When the load has run its course: the workers that dropped out, the load's end, then
    Locust released, and the run's timeline (a Reckoning of these arguments, awaited at once;
    `before_release` runs once Locust has stopped, while the final scrape is awaited, or
    after that scrape when a process did not report its stop in time; `ended_by_load`: the
    faults it rolls back, as Reckoning has them). The last figures count only once Prometheus
    has scraped them after Locust stopped."""
    reckoning = Reckoning(*args, **kwargs).start()
    reckoning.ended_by_load = set(ended_by_load)
    if not reckoning.finished:  # Locust may still be sending: its final figures first
        reckoning.scraped()
    before_release()
    return reckoning.result()


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
    ended_by_load: tuple[Collection[str], float] = ((), 0.0),
) -> dict[str, FaultSpan]:
    """The journal's faults as judged windows. `effects` are the recovery watcher's
    (armed at, steady again at) pairs: an instantaneous fault's effect ends at the first
    steady instant after it. `ended_by_load`: (names, the load's end): windowed faults rolled
    back once the load was over, whose windows last until its end."""
    steps = {step_key(s.name): s for s in topo.chaos}
    spans = {}
    at_end, load_end = ended_by_load
    for f in faults:
        if not f["injected_at"]:
            continue
        holders = (f.get("before") or {}).get("vip_holders") or {}
        windowed = f.get("for") is not None
        end = (f["rolled_back_at"] or f["injected_at"]) if windowed else f["injected_at"]
        if windowed and f["name"] in at_end:
            end = max(end, load_end)
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
