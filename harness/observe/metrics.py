"""The catalogue of the harness's own metrics: every name, its label names and its help text.

Whoever exports a series (the Locust plugin, the harness's exporter) registers it from here, and
whoever reads one (the watchers, the verdict's PromQL, the report, `dashboards/build.py`) names
it from here, so a name is written once.

`Metric.name` is the family name as `prometheus_client` takes it; a counter's samples are
`Metric.total` (`<name>_total`), a histogram's buckets `Metric.bucket` (`<name>_bucket`).
Prometheus adds `run` (the run id) and `instance` (the scrape target: `harness`, `locust`,
`locust-worker-<n>`) to every series at scrape time, so no metric declares them.

Stdlib only, and nothing imported at module level beyond it: the Locust plugin imports this
inside Locust's gevent-patched processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PREFIX = "harness_"  # every metric of the harness's own starts with it

Type = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Metric:
    name: str
    help: str
    labels: tuple[str, ...] = ()
    type: Type = "gauge"

    @property
    def total(self) -> str:
        """A counter's sample name (what PromQL selects)."""
        assert self.type == "counter", f"{self.name} is a {self.type}, not a counter"
        return f"{self.name}_total"

    @property
    def bucket(self) -> str:
        """A histogram's bucket series (what `histogram_quantile` reads)."""
        assert self.type == "histogram", f"{self.name} is a {self.type}, not a histogram"
        return f"{self.name}_bucket"


# ---------------------------------------------------------------- the Locust plugin (per process)

REQUEST_LABELS = ("name", "method", "status", "served_by")

REQUESTS = Metric("harness_requests", "Requests sent by the load.", REQUEST_LABELS, "counter")
REQUEST_FAILURES = Metric(
    "harness_request_failures",
    "Requests that failed (by Locust's rules).",
    REQUEST_LABELS,
    "counter",
)
REQUEST_DURATION = Metric(
    "harness_request_duration_seconds",
    "Response time, by outcome (ok: the request succeeded; error: it failed).",
    ("name", "status", "served_by", "outcome"),
    "histogram",
)
REQUEST_CORRECTED_DURATION = Metric(
    "harness_request_corrected_duration_seconds",
    "Response time from the intended send time (fixed arrival rate): slow answers delay "
    "later sends, and this counts that delay instead of hiding it (coordinated omission).",
    ("name", "outcome"),
    "histogram",
)
LAST_RESPONSE = Metric(
    "harness_last_response_timestamp_seconds",
    "Last response seen from a node (served_by; 'none' = no node named it: LB or connection "
    "errors), by outcome.",
    ("served_by", "outcome"),
)
LB_SWITCH = Metric(
    "harness_lb_switch_timestamp_seconds",
    "Latest time a user got a successful answer through this LB after its previous "
    "success had come through another LB.",
    ("lb",),
)
CLIENTS_SERVED_AGAIN = Metric(
    "harness_clients_served_again_timestamp_seconds",
    "Latest first success after a user's last failure, over users; +Inf while any user's "
    "most recent request failed; 0 if no user ever failed.",
)
LAST_FAILURE = Metric(
    "harness_last_failure_timestamp_seconds",
    "Completion time of the most recent failed request in this Locust process (0: none).",
)
SESSIONS_STARTED = Metric(
    "harness_sessions_started", "Logins that created a session.", (), "counter"
)
SESSIONS_LOST = Metric(
    "harness_sessions_lost", "Sessions whose user changed or vanished.", ("reason",), "counter"
)
WRITES_ACKED = Metric(
    "harness_writes_acked", "Writes the app acknowledged (200 after commit).", (), "counter"
)
READS_CHECKED = Metric(
    "harness_reads_checked",
    "Read-backs of a user's own acknowledged write, by where the app read (X-DB-Read).",
    ("read_from",),
    "counter",
)
READS_STALE = Metric(
    "harness_reads_stale",
    "Read-backs that did not yet see the user's own acknowledged write (stale reads).",
    ("read_from",),
    "counter",
)
WRITE_RESUMED = Metric(
    "harness_write_resumed_timestamp_seconds",
    "Latest first acknowledged write after a failed one, by store (db: an order; session: a "
    "session write): after a store failover, when writes went through the new primary.",
    ("store",),
)
USERS = Metric("harness_users", "Current simulated users in this Locust process.", ("role",))
LOAD_STARTED = Metric("harness_load_started_timestamp_seconds", "When the load test started.")
LOAD_FINISHED = Metric("harness_load_finished_timestamp_seconds", "When the load test stopped.")
WORKERS_CONNECTED = Metric(
    "harness_locust_workers_connected",
    "Workers the Locust master hears from (not missing); exported by the master only.",
)

# ---------------------------------------------------------------- the harness's exporter

FAULT_INJECTED = Metric(
    "harness_fault_injected_timestamp_seconds",
    "When a fault was injected.",
    ("fault", "kind", "target"),
)
FAULT_ROLLED_BACK = Metric(
    "harness_fault_rolled_back_timestamp_seconds",
    "When a fault was rolled back.",
    ("fault", "kind", "target"),
)
# Watchers (harness/watch): ground truth with millisecond timestamps.
CONTAINER_EVENT = Metric(
    "harness_container_event_timestamp_seconds",
    "Last Docker event per container and action (die, start, pause, ...).",
    ("container", "action"),
)
CONTAINER_RUNNING = Metric(
    "harness_container_running", "1 while the container runs (Docker events).", ("container",)
)
BACKEND_STATE = Metric(
    "harness_backend_state_timestamp_seconds",
    "When an LB marked a backend server UP or DOWN (its own log line).",
    ("lb", "server", "state"),
)
BACKEND_UP = Metric(
    "harness_backend_up", "1 while the LB reports the backend UP.", ("lb", "server")
)
REGISTRY_EVENT = Metric(
    "harness_registry_event_timestamp_seconds",
    "When the service registry registered (PUT) or deregistered (DELETE: its lease expired) an "
    "instance, as the registry itself delivered the event.",
    ("registry", "server", "action"),
)
KEEPALIVED_STATE = Metric(
    "harness_keepalived_state_timestamp_seconds",
    "When Keepalived entered a state (MASTER, BACKUP, FAULT).",
    ("lb", "state"),
)
VIP_HOLDER = Metric(
    "harness_vip_holder", "1 while this LB instance holds its service's VIP.", ("service", "lb")
)
VIP_ACQUIRED = Metric(
    "harness_vip_acquired_timestamp_seconds",
    "When this LB instance last got the VIP.",
    ("service", "lb"),
)
RECOVERED = Metric(
    "harness_recovered_timestamp_seconds",
    "When the system was steady again after the last fault.",
)
RELAPSE = Metric(
    "harness_relapse_timestamp_seconds",
    "When the system, once steady again after a fault, stopped being steady (last time).",
)
# Post-run measurements.
WRITES_MISSING = Metric("harness_writes_missing", "Acknowledged writes missing from the database.")
WRITES_CHECKED = Metric(
    "harness_writes_checked", "Acknowledged writes checked against the database."
)
# One series per testinfra assertion: its module and the service it ran on (validation refuses
# the same pair twice).
TESTINFRA_FAILED = Metric(
    "harness_testinfra_failed", "Failed tests of a testinfra module.", ("module", "hosts")
)
TESTINFRA_PASSED = Metric(
    "harness_testinfra_passed", "Passed tests of a testinfra module.", ("module", "hosts")
)
POST_RUN = Metric("harness_post_run_timestamp_seconds", "Post-run measurements are published.")

PLUGIN = (
    REQUESTS,
    REQUEST_FAILURES,
    REQUEST_DURATION,
    REQUEST_CORRECTED_DURATION,
    LAST_RESPONSE,
    LB_SWITCH,
    CLIENTS_SERVED_AGAIN,
    LAST_FAILURE,
    SESSIONS_STARTED,
    SESSIONS_LOST,
    WRITES_ACKED,
    READS_CHECKED,
    READS_STALE,
    WRITE_RESUMED,
    USERS,
    LOAD_STARTED,
    LOAD_FINISHED,
    WORKERS_CONNECTED,
)
EXPORTER = (
    FAULT_INJECTED,
    FAULT_ROLLED_BACK,
    CONTAINER_EVENT,
    CONTAINER_RUNNING,
    BACKEND_STATE,
    BACKEND_UP,
    REGISTRY_EVENT,
    KEEPALIVED_STATE,
    VIP_HOLDER,
    VIP_ACQUIRED,
    RECOVERED,
    RELAPSE,
    WRITES_MISSING,
    WRITES_CHECKED,
    TESTINFRA_FAILED,
    TESTINFRA_PASSED,
    POST_RUN,
)
ALL = PLUGIN + EXPORTER
