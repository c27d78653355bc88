"""Cross-reference checks pydantic cannot do alone: dangling names, cycles (declared and
implicit), name and address clashes, the files a run needs, kinds that need peers, and the
semantic nonsense a schema cannot see (a count above the replicas, overlapping windows on one
target, a session check against per-node sessions).

`check_topology` and `check_merged` yield errors; `warn_topology` yields
warnings (printed, one line each, never failing validation); `check_plan` builds the run's
plan once validation has passed, so that what validation accepts the plan can build.

One module per concern: `topology` (the order checks run in), `services`, `network`,
`paths`, `load`, `faults`, `assertions`, `merged` (after experiments join), `warn`, and
`common` (the kinds by role, the toxics' fields, hints).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from harness.spec.addresses import EXAMPLE_SUBNET, AddressError
from harness.spec.liveness import instance_names
from harness.spec.models import Topology
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
    "check_plan",
    "check_topology",
    "instance_names",
    "resolve_fault_ref",
    "resolve_locustfile",
    "warn_topology",
]


def check_plan(topo: Topology, base_dir: Path = Path(".")) -> Iterator[tuple[Loc, str]]:
    """Build the run's plan from a topology that passed every other check: user templates are
    rendered (syntax errors and names that do not exist are found here, at their line), and
    whatever else the plan would trip over is reported rather than left for the run."""
    from harness.kinds.base import UserFileError
    from harness.plan.build import make_plan

    subnet = topo.network.subnet or EXAMPLE_SUBNET
    secrets = {"db_password": "x" * 24, "redis_password": "x" * 24}
    try:
        make_plan(topo, "validate", subnet, [], secrets=secrets, base_dir=base_dir)
    except UserFileError as exc:
        loc: Loc = ("services", exc.service, "config")
        if exc.dest is not None and isinstance(topo.services[exc.service].config, dict):
            loc += (exc.dest,)
        yield loc, exc.message
    except AddressError as exc:
        yield ("network",), str(exc)
    except RecursionError:
        yield ("services",), "the topology is too deeply interlinked to plan (simplify depends_on)"
    except Exception as exc:  # noqa: BLE001 - a bug in the harness: say so, at the top
        text = f"{type(exc).__name__}: {exc}"
        yield (
            ("services",),
            f"the run's plan cannot be built from this topology: {text[:300]} "
            "(this is a harness bug: please report it with this file)",
        )
