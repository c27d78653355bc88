"""What each listener does with the run's events (see events.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.grafana import GrafanaAnnotator
from harness.observe.exporter import HarnessExporter
from harness.run.events import Event, FaultEvent
from harness.watch.recovery import RecoveryWatcher


def fault_targets(target: str) -> tuple[str, ...]:
    """The containers (or links) a journaled fault hit: `web-1, web-2`, `php-fpm@web-1`."""
    return tuple(t.strip().rpartition("@")[2] for t in target.split(",") if t.strip())


def exporter_gauges(exporter: HarnessExporter) -> Callable[[Event], None]:
    """Each fault's start and end as gauges, for the verdict's PromQL and the dashboards."""

    def on(event: Event) -> None:
        if isinstance(event, FaultEvent):
            gauge = exporter.fault_start if event.injected else exporter.fault_end
            e = event.entry
            gauge.labels(e["name"], e["kind"], e["target"]).set(event.at)

    return on


def grafana_annotations(grafana: GrafanaAnnotator) -> Callable[[Event], None]:
    def on(event: Event) -> None:
        if isinstance(event, FaultEvent):
            e = event.entry
            if event.injected:
                grafana.fault_started(e["name"], e["target"], kind=e["kind"], at=event.at)
            else:
                grafana.fault_ended(e["name"], at=event.at)

    return on


def console(say: Callable[[str], None]) -> Callable[[Event], None]:
    def on(event: Event) -> None:
        if isinstance(event, FaultEvent):
            e: dict[str, Any] = event.entry
            say(f"fault {event.what.replace('_', ' ')}: {e['name']} ({e['kind']} {e['target']})")

    return on


def recovery_watch(recovery: RecoveryWatcher) -> Callable[[Event], None]:
    """A windowed fault's trouble is the fault itself, not a relapse: the watcher holds while
    it lasts. A node left dead on purpose is not a recovery problem: an instantaneous fault arms
    the watcher and marks its targets expected down."""

    def on(event: Event) -> None:
        if not isinstance(event, FaultEvent):
            return
        if event.windowed:
            (recovery.hold if event.injected else recovery.release)(event.at)
        elif event.injected:
            targets = set(fault_targets(str(event.entry["target"])))
            recovery.expected_down.update(targets)
            recovery.removed_at.update(dict.fromkeys(targets, event.at))
            recovery.arm(event.at)

    return on
