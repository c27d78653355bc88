"""A harness that cannot fail is worthless: each known-bad topology must fail, on the assertion
its defect breaks, with exit code 1, and with a real figure beyond the bound (a measured value,
not "no data": an assertion that fails for want of a figure proves nothing about the gate)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import harness, journal, leftovers

pytestmark = pytest.mark.docker


def beyond_bound(a: dict[str, Any]) -> bool:
    """The journal's measured figure lies on the failing side of the assertion's bound ("+Inf",
    JSON's stand-in for "never", counts as beyond any upper bound)."""
    measured = math.inf if a["measured"] == "+Inf" else a["measured"]
    if not isinstance(measured, int | float) or math.isnan(measured):
        return False
    extra = a.get("extra") or {}
    if "between" in extra:
        low, high = extra["between"]
        return measured < low or measured > high
    bound = a["bound"]
    if bound is None:
        return False
    op = extra.get("op", "<=")
    if op == ">":  # `above:` fails when the figure is not above the bound
        return measured <= bound
    if op == "<":  # `below:` and latency fail when the figure reaches the bound
        return measured >= bound
    return measured > bound


# figure=False: the run fails for want of a figure ("never"), which is the defect itself:
# an Nginx whose `max_fails: 0` never ejects anything has no ejection instant to measure.
@pytest.mark.parametrize(
    ("topology", "breaks", "auto", "figure"),
    [
        ("topologies/examples/slow-health-check.yaml", "ejection_time", False, True),
        ("topologies/examples/nginx-never-ejects.yaml", "ejection_time", False, False),
        ("topologies/examples/no-track-script.yaml", "failover_time", False, True),
        ("topologies/examples/db-timeout.yaml", "error_budget", False, True),
        ("topologies/examples/slow-rise.yaml", "recovery_time", False, True),
        ("topologies/examples/unsafe-commit.yaml", "no_lost_writes", False, True),
        ("topologies/examples/tiny-fpm-pool.yaml", "latency", False, True),
        ("topologies/examples/opcache-off.yaml", "testinfra", False, True),
        ("topologies/examples/db-max-connections.yaml", "promql", False, True),
        ("topologies/examples/nginx-only-health-check.yaml", "ejection_time", True, True),
    ],
)
def test_known_bad_topology_fails_on_the_right_assertion(
    topology: str, breaks: str, auto: bool, figure: bool, tmp_path: Path
) -> None:
    proc = harness("run", topology, "--runs-dir", str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    j = journal(tmp_path)
    failed = [a for a in j["assertions"] if a["status"] == "failed" and a["kind"] == breaks]
    assert failed, [(a["kind"], a["status"], a["message"]) for a in j["assertions"]]
    measured = [a for a in failed if beyond_bound(a)]
    if figure:
        assert measured, [(a["measured"], a["bound"], a["message"]) for a in failed]
    if auto:  # max: auto, the bound derived from the topology's own config
        assert measured and all((a.get("extra") or {}).get("bound_from_config") for a in measured)
    assert all(f["status"] == "rolled_back" for f in j["faults"])
    assert leftovers(j["run_id"]) == []


@pytest.mark.parametrize(
    ("a", "beyond"),
    [
        ({"measured": 9.6, "bound": 3.0, "extra": {"op": "<="}}, True),
        ({"measured": 2.0, "bound": 3.0, "extra": {"op": "<="}}, False),
        ({"measured": "+Inf", "bound": 5.0, "extra": {"op": "<="}}, True),
        ({"measured": None, "bound": 5.0, "extra": {"op": "<="}}, False),
        ({"measured": 0.3, "bound": 0.3, "extra": {"op": "<"}}, True),
        ({"measured": 0.5, "bound": 1.0, "extra": {"op": ">"}}, True),
        ({"measured": 2.0, "bound": 1.0, "extra": {"op": ">"}}, False),
        ({"measured": 7.0, "bound": None, "extra": {"op": "between", "between": [1, 5]}}, True),
        ({"measured": 3.0, "bound": None, "extra": {"op": "between", "between": [1, 5]}}, False),
    ],
)
def test_beyond_bound(a: dict[str, Any], beyond: bool) -> None:
    assert beyond_bound(a) is beyond
