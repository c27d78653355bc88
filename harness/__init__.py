"""harness: full-chain load-test and chaos verification for PHP stacks.

Public API (imported lazily: `python -m harness.load.locust_main` imports this package before
Locust's gevent patching, so nothing heavy may be imported here eagerly):

    from harness import Run, load_topology
    result = Run("topologies/ha.yaml").execute()   # RunResult(exit_code, status, results, ...)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"  # the only place the version is written (pyproject.toml reads it)

_EXPORTS = {
    "Run": "harness.run.public",  # a HostsRun for a runtime: hosts file
    "RunResult": "harness.runner",
    "load_topology": "harness.plan.check",
    "Topology": "harness.spec.models",
    "HarnessError": "harness.errors",
    "SpecError": "harness.errors",
    "InfrastructureError": "harness.errors",
    "Inconclusive": "harness.errors",
    "Interrupted": "harness.errors",
    "host": "harness.hosts",
    "hosts": "harness.hosts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
