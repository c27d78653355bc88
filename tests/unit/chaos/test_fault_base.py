"""Every fault is a chaos.base.BaseFault: an object with inject() and rollback() that the
schedule journals before it is applied (issue 10, ask 7)."""

from __future__ import annotations

from typing import Any

import pytest

from harness import chaos
from harness.chaos import container
from harness.chaos.base import BaseFault


def fault_class(kind: str) -> Any:
    made = chaos.module(kind).Fault
    return made if isinstance(made, type) else container.KINDS[kind]  # the container factory


@pytest.mark.parametrize("kind", sorted(chaos.FAULTS))
def test_every_fault_kind_is_a_base_fault(kind: str) -> None:
    assert issubclass(fault_class(kind), BaseFault), f"{kind}: class Fault(BaseFault)"


def test_a_fault_without_rollback_cannot_be_made() -> None:
    class Half(BaseFault):
        def inject(self) -> None:
            pass

    with pytest.raises(TypeError, match="rollback"):
        Half()  # type: ignore[abstract]
