"""Topology files: YAML with line numbers → typed pydantic models → cross-reference checks."""

from harness.spec.loader import load_topology
from harness.spec.models import Topology

__all__ = ["Topology", "load_topology"]
