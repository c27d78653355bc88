"""No lost writes: every order id the app acknowledged (200 after commit, logged by the Locust
plugin in events.jsonl) must be in the database after the run."""

from __future__ import annotations

import json
from pathlib import Path

from docker.models.containers import Container

from harness import kinds
from harness.errors import InfrastructureError
from harness.plan.model import RunPlan
from harness.runtime.probe import vip_holder


def acked_ids(run_dir: Path) -> set[str]:
    """From every Locust process's event log (events.jsonl, events-<port>.jsonl for workers)."""
    ids: set[str] = set()
    for events in sorted(run_dir.glob("events*.jsonl")):
        with events.open() as fh:
            for line in fh:
                if '"write_acked"' in line:
                    try:
                        ids.add(json.loads(line)["id"])
                    except (ValueError, KeyError):
                        continue
    return ids


def stored_ids(plan: RunPlan, containers: dict[str, Container]) -> set[str]:
    db = next((c for c in plan.containers if kinds.descriptor(c.kind).read_orders), None)
    if db is None:
        raise InfrastructureError("no database service to check writes against")
    if db.service in plan.vips:  # a replicated database: the primary is who holds the VIP now
        holder = vip_holder(containers, plan, db.service)
        if holder is None:
            raise InfrastructureError(
                f"no instance of {db.service} holds its VIP {plan.vips[db.service]} after the run, "
                "so there is no primary to check writes against"
            )
        db = next(c for c in plan.containers if c.instance == holder)
    read_orders = kinds.descriptor(db.kind).read_orders
    assert read_orders is not None
    code, out = containers[db.instance].exec_run(read_orders(plan.secrets))
    if code != 0:
        raise InfrastructureError(
            f"cannot read orders from {db.instance}: {out.decode(errors='replace')[-200:]}"
        )
    return set(out.decode().split())


def check(
    plan: RunPlan, containers: dict[str, Container], run_dir: Path
) -> tuple[int, int, list[str]]:
    """(acknowledged ids checked, missing from the database, a sample of the missing ones)."""
    return tally(run_dir, stored_ids(plan, containers))


def tally(run_dir: Path, stored: set[str]) -> tuple[int, int, list[str]]:
    """The acknowledged ids of the run against those `stored` in the database (read from a
    container here, over SSH on runtime: hosts): (checked, missing, a sample of the missing)."""
    acked = acked_ids(run_dir)
    missing = acked - stored
    return len(acked), len(missing), sorted(missing)[:20]
