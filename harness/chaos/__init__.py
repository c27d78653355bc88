"""Faults: a name → module registry; each module's `Fault` has `inject()` and `rollback()`."""

from __future__ import annotations

import importlib
from typing import Any

FAULTS: dict[str, str] = {
    "kill": "harness.chaos.kill",
}


def make(kind: str, params: Any, ctx: Any) -> Any:
    return importlib.import_module(FAULTS[kind]).Fault(params, ctx)
