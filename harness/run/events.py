"""The run's event fan-out: what happened (a phase began, a fault was injected or rolled back),
told once to every subscriber (the exporter's gauges, Grafana annotations, the console, the
recovery watcher) instead of one closure in the runner that knows all of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.journal import FaultStatus


@dataclass(frozen=True)
class PhaseChanged:
    name: str  # the phase now running (a name of PHASES)


@dataclass(frozen=True)
class FaultEvent:
    """A fault was injected or rolled back. `entry` is its journal record (FaultRecord)."""

    what: str  # FaultStatus.INJECTED or FaultStatus.ROLLED_BACK
    entry: dict[str, Any]

    @property
    def injected(self) -> bool:
        return self.what == FaultStatus.INJECTED

    @property
    def at(self) -> float:
        return float(self.entry["injected_at"] if self.injected else self.entry["rolled_back_at"])

    @property
    def windowed(self) -> bool:
        """A fault with a `for:` window ends at its rollback; an instantaneous one (a kill)
        leaves its effect behind."""
        return self.entry.get("for") is not None


Event = PhaseChanged | FaultEvent
Subscriber = Callable[[Event], None]


class Events:
    """Subscribers are told in the order they subscribed; an error in one propagates (as the
    code it replaces did)."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Subscriber:
        self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def emit(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            subscriber(event)

    def fault_notify(self, what: str, entry: dict[str, Any]) -> None:
        """The chaos schedule's `notify(event, entry)` callback, as an event."""
        self.emit(FaultEvent(what, entry))
