"""A topology written from text into a test's directory, then validated as `harness validate`
does: its problems (each `line: field: problem (fix)`, the file name cut off) or the plan it
becomes. Shared by the spec and kind tests of one feature (the data tier, the read split)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.plan.build import make_plan
from harness.plan.check import load_topology
from harness.plan.model import RunPlan

REPO = Path(__file__).resolve().parents[3]
SUBNET = "10.213.9.0/24"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_topology(path)
    return [p[len(str(path)) + 1 :] for p in info.value.problems]


def plan(tmp_path: Path, text: str) -> RunPlan:
    return make_plan(load_topology(write(tmp_path, text)), "r1", SUBNET, [], base_dir=tmp_path)
