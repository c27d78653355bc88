"""Data-tier assertions (issue 12): `replication_lag`, from the heartbeat a replicated MariaDB's
primary writes every 100 ms (images/data/mariadb-start.sh) and each instance's mysqld exporter
reads back (`--collect.heartbeat`): now minus the stored timestamp, both microseconds, so the
lag is exact to the millisecond at every scrape, unlike `Seconds_Behind_Master`'s whole seconds.
The figure includes up to one heartbeat period (the row is only rewritten every 100 ms).

`compile` returns what `assertions.Compiler` builds its Query from (this module does not import
it: the verdict's assertions call in here, never the other way)."""

from __future__ import annotations

from typing import Any

from harness.observe import metrics
from harness.roles import kinds_where
from harness.spec.models import Assertion, Topology
from harness.spec.semantic import instance_names
from harness.verdict.promql import dur, m, sel
from harness.verdict.query import Figure
from harness.verdict.windows import Span

# mysqld_exporter's heartbeat collector (pt-heartbeat's table layout), per scraped instance
HEARTBEAT_NOW = "mysql_heartbeat_now_timestamp_seconds"
HEARTBEAT_STORED = "mysql_heartbeat_stored_timestamp_seconds"
KINDS = ("replication_lag",)


def replicated_service(topo: Topology, service: str | None) -> str:
    if service is not None:
        return service
    return next(  # validation made sure there is one
        n
        for n, s in topo.services.items()
        if s.kind in kinds_where(replicates=True) and s.replicas > 1
    )


def lag_series(run_id: str, instances: list[str]) -> str:
    """Seconds each of `instances` trails the heartbeat, one series per instance."""
    s = sel(run_id, m(instance="=~" + "|".join(instances)))
    return f"({HEARTBEAT_NOW}{s} - {HEARTBEAT_STORED}{s})"


def replication_lag(
    run_id: str,
    topo: Topology,
    interval: float,
    a: Assertion,
    span: Span,
    hit: frozenset[str] = frozenset(),
) -> Figure:
    """`hit`: instances a fault targeted in the run; they may fall silent. Every other instance
    must have reported its lag in the window: a missing one is no figure, not a small one."""
    p: Any = a.params
    service = replicated_service(topo, p.service)
    instances = instance_names(service, topo.services[service].replicas)
    lag = lag_series(run_id, instances)
    window = f"[{dur(span.seconds)}:{dur(interval)}] @ {span.end:.3f}"
    seen = f"count(max_over_time({lag}{window}))"
    guards = [(seen, f"no heartbeat from {service} in this window: nothing to measure")]
    spared = [i for i in instances if i not in hit]
    if spared:  # count(...) - (n - 1) > 0: all n of them reported
        every = f"count(max_over_time({lag_series(run_id, spared)}{window})) - {len(spared) - 1}"
        why = f"inconclusive: not every one of {', '.join(spared)} reported its lag"
        guards.append((every, why))

    def quantile(q: float) -> str:
        return f"max(quantile_over_time({q}, {lag}{window}))"

    # No freshness check on the database exporters: a killed primary stops being scraped by
    # design; the guard only asks that some heartbeat was seen in the window.
    return Figure(
        f"max(max_over_time({lag}{window}))",
        float(p.max),
        "<=",
        "s",
        guards=guards,
        also={"p50": quantile(0.5), "p99": quantile(0.99)},
    )


# Which writes date a data service's failover: the app's orders for a database, its session
# writes for Redis (the Locust plugin's `harness_write_resumed_timestamp_seconds{store}`).
WRITE_STORES = {"mariadb": "db", "mysql": "db", "redis": "session"}


def first_write(
    run_id: str, topo: Topology, service: str, fault_start: float, until: float
) -> str | None:
    """For `failover_time` on a data service: seconds from the fault to the first write the
    clients got acknowledged after failed ones (through the new primary), or None when
    `service` is not a data service. No figure when no write failed after the fault."""
    svc = topo.services.get(service)
    store = WRITE_STORES.get(svc.kind) if svc is not None else None
    if store is None:
        return None
    resumed = f"{metrics.WRITE_RESUMED.name}{sel(run_id, m(store=store))}"
    span = f"[{dur(max(until - fault_start, 0.001))}:100ms] @ {until:.3f}"
    return f"(min(min_over_time(({resumed} >= {fault_start:.3f}){span})) - {fault_start:.3f})"


compile = replication_lag  # the data tier's one assertion kind so far (KINDS)
