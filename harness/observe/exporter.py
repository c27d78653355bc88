"""The harness process's own metrics: fault instants as timestamp-valued gauges (so PromQL gets
millisecond answers whatever the scrape interval). Bound to the run bridge's gateway address
only, where the run's Prometheus can reach it and nothing else can.

No series carries an `instance` label of its own: the scrape config sets `instance` (the
exporter's name), which would rename ours to `exported_instance` and silently break every
selector on it. LB instances are `lb`, containers `container`."""

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
            "harness_fault_injected_timestamp_seconds",
            "When a fault was injected.",
            ["fault", "kind", "target"],
            registry=self.registry,
        )
        self.fault_end = Gauge(
            "harness_fault_rolled_back_timestamp_seconds",
            "When a fault was rolled back.",
            ["fault", "kind", "target"],
            registry=self.registry,
        )

        def g(name: str, doc: str, labels: list[str]) -> Gauge:
            return Gauge(name, doc, labels, registry=self.registry)

        # Watchers (harness/watch): ground truth with millisecond timestamps.
        self.container_event = g(
            "harness_container_event_timestamp_seconds",
            "Last Docker event per container and action (die, start, pause, ...).",
            ["container", "action"],
        )
        self.container_running = g(
            "harness_container_running",
            "1 while the container runs (Docker events).",
            ["container"],
        )
        self.backend_state = g(
            "harness_backend_state_timestamp_seconds",
            "When an LB marked a backend server UP or DOWN (its own log line).",
            ["lb", "server", "state"],
        )
        self.backend_up = g(
            "harness_backend_up", "1 while the LB reports the backend UP.", ["lb", "server"]
        )
        self.keepalived_state = g(
            "harness_keepalived_state_timestamp_seconds",
            "When Keepalived entered a state (MASTER, BACKUP, FAULT).",
            ["lb", "state"],
        )
        self.vip_holder = g(
            "harness_vip_holder",
            "1 while this LB instance holds its service's VIP.",
            ["service", "lb"],
        )
        self.vip_acquired = g(
            "harness_vip_acquired_timestamp_seconds",
            "When this LB instance last got the VIP.",
            ["service", "lb"],
        )
        self.recovered = g(
            "harness_recovered_timestamp_seconds",
            "When the system was steady again after the last fault.",
            [],
        )
        self.relapse = g(
            "harness_relapse_timestamp_seconds",
            "When the system, once steady again after a fault, stopped being steady (last time).",
            [],
        )
        self.writes_missing = g(
            "harness_writes_missing", "Acknowledged writes missing from the database.", []
        )
        self.writes_checked = g(
            "harness_writes_checked", "Acknowledged writes checked against the database.", []
        )
        self.testinfra_failed = g(
            "harness_testinfra_failed", "Failed tests of a testinfra module.", ["module"]
        )
        self.testinfra_passed = g(
            "harness_testinfra_passed", "Passed tests of a testinfra module.", ["module"]
        )
        self.post_run = g(
            "harness_post_run_timestamp_seconds", "Post-run measurements are published.", []
        )
        self.server: Any
        self.server, self.thread = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
