"""Topology files: YAML with line numbers → typed pydantic models → cross-reference checks.

The spec alone cannot tell whether the run's plan builds (user templates render, addresses
fit): that check sits on the plan's floor. Validate with `harness.load_topology` (that is
`harness.plan.check.load_topology`: the spec's checks, then the plan's); this package's own
`harness.spec.loader.load_topology` is its spec-only first half, for tests of the spec."""

from harness.spec.models import Topology

__all__ = ["Topology"]
