"""The load phase's reckoning: when the load ended (as Prometheus saw it) and each journaled
fault as a judged window."""

from __future__ import annotations

from typing import Any

from harness.errors import InfrastructureError
from harness.load.process import LocustProcess
from harness.observe import metrics
from harness.observe.prom import Prometheus
from harness.run.subscribers import fault_targets
from harness.spec.models import Topology
from harness.verdict.windows import FaultSpan, step_key


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
