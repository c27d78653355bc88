"""A chaos step: when a fault fires, for how long, how often."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    field_validator,
)

from harness.spec.durations import Duration
from harness.spec.models.base import (
    Positive,
    StrictModel,
    no_control,
)
from harness.spec.models.faults import (
    Fault,
)


def injection_name(step: str, k: int) -> str:
    """What the k-th injection (from 1) of a repeated step is called: `name`, `name #2`, ..."""
    return step if k == 1 else f"{step} #{k}"


StepName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(no_control)]


class ChaosStep(StrictModel):
    name: StepName
    at: Duration
    for_: Positive | None = Field(None, alias="for")
    # An instantaneous fault (a kill) is judged over this span after it; `for:` already is a window.
    window: Duration | None = None
    repeat: int = Field(1, ge=1, le=100)  # inject this many times...
    every: Positive | None = None  # ...this far apart (default: `for` + 5s)
    fault: Fault

    @field_validator("every")
    @classmethod
    def _every(cls, v: float | None, info: ValidationInfo) -> float | None:
        span = info.data.get("for_")
        if v is not None and span is not None and v < span:
            raise ValueError(
                f"every: {v:g}s is shorter than for: {span:g}s, so each injection would start "
                f"before the previous one is rolled back (use every: {span:g}s or more)"
            )
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is None:
            return v
        if info.data.get("for_") is not None:
            raise ValueError(
                f"window: is for instantaneous faults, and this step has for: "
                f"{info.data['for_']:g}s, which already is its window (remove window:)"
            )
        if v <= 0:
            raise ValueError("a window of 0s judges nothing (write e.g. window: 10s)")
        return v

    @property
    def interval(self) -> float:
        """Seconds between two injections: `every`, by default the window plus 5 s."""
        return self.every if self.every is not None else (self.for_ or 0.0) + 5.0

    def injections(self) -> list[tuple[float, str]]:
        """(offset from the load start, name) of every injection, as the schedule fires them."""
        return [
            (self.at + k * self.interval, injection_name(self.name, k + 1))
            for k in range(self.repeat)
        ]
