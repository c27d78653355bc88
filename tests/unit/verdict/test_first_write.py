"""`failover_time` on a data service (issue 12, ask 5) reports `first_write`: from the fault to
the first write the clients got acknowledged after failed ones (the Locust plugin's
`harness_write_resumed_timestamp_seconds{store}`: orders for a database, session writes for
Redis), evaluated by a real Prometheus (tests/promlab.py)."""

from __future__ import annotations

from harness.spec.models import Assertion, Topology
from harness.verdict.assertions import PASSED, compile_query, evaluate
from harness.verdict.windows import FaultSpan, Timeline
from tests.promlab import BASE as T0
from tests.promlab import PromLab

RUN = "r1"
END = T0 + 30
KILL = T0 + 10
TOPO = Topology.model_validate(
    {
        "name": "t",
        "services": {
            "web": {"kind": "web"},
            "mysql": {"kind": "mariadb"},
            "redis": {
                "kind": "redis",
                "replicas": 3,
                "sentinel": {"quorum": 2},
                "keepalived": {"advert_int": "1s"},
            },
        },
        "assertions": [{"session_continuity": {}}],
    }
)
TL = Timeline(
    T0,
    END,
    {
        "kill": FaultSpan(
            KILL, KILL, kind="kill", targets=("redis-1",), vip_holders=(("redis", "redis-1"),)
        )
    },
)
FAILOVER = Assertion.model_validate({"failover_time": {"service": "redis", "max": "10s"}})


def test_first_write_is_the_first_session_write_acknowledged_after_the_fault(
    promlab: PromLab,
) -> None:
    times = promlab.scrape_times(T0 - 3, END + 3)
    for job in ("locust", "harness"):
        promlab.scrape_target(job, job, RUN, [(t, 1.0) for t in times])
    loc = {"run": RUN, "instance": "locust"}
    promlab.counter("harness_requests_total", loc, [(t, max(0.0, 10 * (t - T0))) for t in times])
    promlab.gauge(
        "harness_clients_served_again_timestamp_seconds",
        loc,
        [(t, 0.0 if t < KILL + 8 else KILL + 7.4) for t in times],
    )
    # a write that resumed before the fault (start-up) is not the failover's; the session store
    # took writes again 6.2 s after the kill; the database's resumed writes are another store's
    resumed = [(t, T0 + 2 if t < KILL + 7 else KILL + 6.2) for t in times if t >= T0 + 3]
    promlab.gauge("harness_write_resumed_timestamp_seconds", {**loc, "store": "session"}, resumed)
    promlab.gauge(
        "harness_write_resumed_timestamp_seconds",
        {**loc, "store": "db"},
        [(t, KILL + 1.0) for t in times if t >= KILL + 2],
    )
    promlab.start()
    r = evaluate(FAILOVER, promlab.prom, RUN, TL, TOPO)
    assert r.status == PASSED and abs(r.measured - 7.4) < 0.01  # type: ignore[operator]
    assert abs(r.extra["first_write"] - 6.2) < 0.01


def test_only_data_services_get_a_first_write_figure() -> None:
    q = compile_query(FAILOVER, RUN, TL, TOPO)
    assert 'store="session"' in q.also["first_write"]
    assert f">= {KILL:.3f}" in q.also["first_write"]
    lb = Topology.model_validate(
        {
            "name": "t",
            "services": {
                "lb": {"kind": "haproxy", "replicas": 2, "backends": "web", "keepalived": {}},
                "web": {"kind": "web"},
                "redis": {"kind": "redis"},
                "mysql": {"kind": "mariadb"},
            },
            "assertions": [{"session_continuity": {}}],
        }
    )
    tl = Timeline(
        T0,
        END,
        {
            "kill": FaultSpan(
                KILL, KILL, kind="kill", targets=("lb-1",), vip_holders=(("lb", "lb-1"),)
            )
        },
    )
    a = Assertion.model_validate({"failover_time": {"service": "lb"}})
    assert "first_write" not in compile_query(a, RUN, tl, lb).also
