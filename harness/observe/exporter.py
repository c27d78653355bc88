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

from harness.observe import metrics


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class HarnessExporter:
    def __init__(self, host: str, port: int) -> None:
        self.registry = CollectorRegistry()

        def g(metric: metrics.Metric) -> Gauge:
            return Gauge(metric.name, metric.help, metric.labels, registry=self.registry)

        self.fault_start = g(metrics.FAULT_INJECTED)
        self.fault_end = g(metrics.FAULT_ROLLED_BACK)
        # Watchers (harness/watch): ground truth with millisecond timestamps.
        self.container_event = g(metrics.CONTAINER_EVENT)
        self.container_running = g(metrics.CONTAINER_RUNNING)
        self.backend_state = g(metrics.BACKEND_STATE)
        self.backend_up = g(metrics.BACKEND_UP)
        self.registry_event = g(metrics.REGISTRY_EVENT)
        self.keepalived_state = g(metrics.KEEPALIVED_STATE)
        self.vip_holder = g(metrics.VIP_HOLDER)
        self.vip_acquired = g(metrics.VIP_ACQUIRED)
        self.recovered = g(metrics.RECOVERED)
        self.relapse = g(metrics.RELAPSE)
        # Post-run measurements.
        self.writes_missing = g(metrics.WRITES_MISSING)
        self.writes_checked = g(metrics.WRITES_CHECKED)
        self.testinfra_failed = g(metrics.TESTINFRA_FAILED)
        self.testinfra_passed = g(metrics.TESTINFRA_PASSED)
        self.post_run = g(metrics.POST_RUN)
        self.server: Any
        self.server, self.thread = start_http_server(port, addr=host, registry=self.registry)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
