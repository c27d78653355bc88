"""Cross-reference checks pydantic cannot do alone: dangling names, cycles (declared and
implicit), name and address clashes, the files a run needs, kinds that need peers, and the
semantic nonsense a schema cannot see (a count above the replicas, overlapping windows on one
target, a session check against per-node sessions).

`check_topology` and `check_merged` yield errors; `warn_topology` yields
warnings (printed, one line each, never failing validation). The check that needs the run's
plan built sits on the plan's floor: harness/plan/check.py.

One module per concern: `topology` (the order checks run in), `services`, `network`,
`paths`, `load`, `faults`, `assertions`, `merged` (after experiments join), `warn`, and
`common` (the kinds by role, the toxics' fields, hints).
"""

from __future__ import annotations

from harness.spec.liveness import instance_names
from harness.spec.semantic.common import (
    APP_KINDS,
    DB_KINDS,
    LB_KINDS,
    RESTARTABLE,
    TOXIC_FIELDS,
    TOXIC_REQUIRED,
    Loc,
)
from harness.spec.semantic.faults import resolve_fault_ref
from harness.spec.semantic.load import resolve_locustfile
from harness.spec.semantic.merged import check_merged
from harness.spec.semantic.topology import check_topology
from harness.spec.semantic.warn import warn_topology

__all__ = [
    "APP_KINDS",
    "DB_KINDS",
    "LB_KINDS",
    "RESTARTABLE",
    "TOXIC_FIELDS",
    "TOXIC_REQUIRED",
    "Loc",
    "check_merged",
    "check_topology",
    "instance_names",
    "resolve_fault_ref",
    "resolve_locustfile",
    "warn_topology",
]
