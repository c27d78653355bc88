"""Service kinds: each module turns one kind of service into container plans (image, rendered
configs, health wait, scrape targets) and describes itself (`DESCRIPTOR`); the rest of the
harness asks this registry by role and never names a kind.

How to add a kind (e.g. a new load balancer)
--------------------------------------------
1. harness/spec/models/services.py: one model class (`kind: Literal["mylb"]`, its options),
   added to the `Service` union. Validation that only needs the model goes in its validators.
2. harness/roles.py: one `FACTS` entry: its role (`Role.LOAD_BALANCER`, ...), its module, the
   processes `process_kill` may kill and start again (`Process(name, restart command)`), and
   facts such as `default_config=False`. Spec checks, graph edges, chaos, watch and verdict pick
   it up by role (`roles.kinds_of(Role.LOAD_BALANCER)`): an LB gets `backends` edges, is a load
   target, may carry `keepalived:`.
3. harness/kinds/mylb.py:
   - `containers(ctx, name, svc) -> list[ContainerPlan]` (render with `base.render` from
     harness/kinds/templates/, finish with `base.apply_overrides`, append scrape targets to
     `ctx.metrics_targets`);
   - `DESCRIPTOR = Descriptor(...)` (harness/kinds/descriptor.py): `image`, `ports`,
     `exporter`, and what applies to the role: for an LB `log=LogLines(...)` (the lines that
     mean a backend went DOWN/UP, that the process started, `keepalived.LOG` for the VIP),
     `tracks` (the process Keepalived's tracking script follows), `ejection(svc) -> (seconds,
     how)` (the bound `max: auto` uses; `ejection_in(topology, svc)` when it depends on other
     services, as a gateway's on its registry's lease TTL), `backends_up` (a PromQL selector
     for the baseline) or `upstreams` (an LB whose log names upstreams by address); for a
     database `read_orders`. A kind with no role yet adds one to `roles.Role`.
4. its template in harness/kinds/templates/ and, if it needs one, its image in images/<name>/
   (harness/runtime/images.py builds every image a plan names).
Options on an existing kind (a check path, slowstart, maxconn) touch only its model class, its
module's render call and its template. tests/unit/test_layers.py fails when a kind's name is
written outside harness/kinds/, harness/roles.py and the model classes.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.kinds.descriptor import Descriptor, LogLines
from harness.roles import FACTS, Role, kinds_of

__all__ = ["Descriptor", "Role", "by_role", "descriptor", "get", "log_lines"]


def get(kind: str) -> ModuleType:
    return importlib.import_module(FACTS[kind].module)


def descriptor(kind: str) -> Descriptor:
    """What `kind` declares about itself; a kind without a module (a user's) describes nothing."""
    d: Descriptor | None = getattr(get(kind), "DESCRIPTOR", None) if kind in FACTS else None
    return d if d is not None else Descriptor(image=None)


def by_role(*roles: Role) -> dict[str, Descriptor]:
    return {kind: descriptor(kind) for kind in kinds_of(*roles)}


def log_lines() -> LogLines:
    """Every line any kind's log watcher understands (for a watcher that is not told its kind)."""
    out = LogLines()
    for d in by_role(*Role).values():
        if d.log is not None:
            out = out + d.log
    return out
