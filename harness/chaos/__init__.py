"""Faults: a name → module registry; each module's `Fault` has `inject()` and `rollback()`.

Several kinds can share one module (the container faults, the eight toxics); such a module's
`Fault` takes a `kind=` keyword, because the parameter models do not carry their kind (it is
the key of `spec.models.Fault`). Every module also offers `recover(kind, detail, restart_stopped)`,
which undoes a journaled fault from its `detail` alone (see `harness.chaos.recover`).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from harness.spec.models import TOXIC_KINDS

_TOXIC = "harness.chaos.toxic"

FAULTS: dict[str, str] = {
    "kill": "harness.chaos.kill",
    "stop": "harness.chaos.container",
    "restart": "harness.chaos.container",
    "pause": "harness.chaos.container",
    "process_kill": "harness.chaos.process_kill",
    "vip_failover": "harness.chaos.vip_failover",
    "partition": "harness.chaos.partition",
    "heartbeat_freeze": "harness.chaos.heartbeat",
    "rolling_restart": "harness.chaos.deploy",
    "deploy": "harness.chaos.deploy",
    **dict.fromkeys(TOXIC_KINDS, _TOXIC),
}


def module(kind: str) -> Any:
    return importlib.import_module(FAULTS[kind])


def make(kind: str, params: Any, ctx: Any) -> Any:
    """The fault `kind` with its parameters; `kind=` is passed only to modules that take it."""
    cls = module(kind).Fault
    if "kind" in inspect.signature(cls).parameters:
        return cls(params, ctx, kind=kind)
    return cls(params, ctx)
