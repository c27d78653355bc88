"""The harness process's own metrics: fault instants as timestamp-valued gauges (so PromQL gets
millisecond answers whatever the scrape interval). Bound to the run bridge's gateway address
only, where the run's Prometheus can reach it and nothing else can."""

from __future__ import annotations

import socket
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, start_http_server


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class HarnessExporter:
    def __init__(self, host: str, port: int) -> None:
        self.registry = CollectorRegistry()
        self.fault_start = Gauge(
            "harness_fault_injected_timestamp_seconds", "When a fault was injected.",
            ["fault", "kind", "target"], registry=self.registry,
        )
        self.fault_end = Gauge(
            "harness_fault_rolled_back_timestamp_seconds", "When a fault was rolled back.",
            ["fault", "kind", "target"], registry=self.registry,
        )
        self.phase = Gauge("harness_phase_started_timestamp_seconds", "Phase starts.", ["phase"], registry=self.registry)
        self.server: Any
        self.server, self.thread = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
