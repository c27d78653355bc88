"""The public `load_topology` is the whole validation (the spec's checks, then the plan's):
`harness.load_topology` is `harness.plan.check.load_topology`, and `harness.spec` no longer
exports its spec-only half under the same name (which would skip the plan check)."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness
import harness.spec
from harness.errors import SpecError
from harness.plan import check
from harness.spec import loader

TOPOLOGY = """\
version: 1
name: t
services:
  lb: {kind: haproxy, backends: web, config: haproxy.cfg.j2}
  web: {kind: web, sessions: files}
  mysql: {kind: mariadb}
"""


def test_the_public_name_is_the_one_that_checks_the_plan() -> None:
    assert harness.load_topology is check.load_topology
    assert not hasattr(harness.spec, "load_topology")
    assert "load_topology" not in harness.spec.__all__


def test_the_spec_alone_misses_what_the_plan_finds(tmp_path: Path) -> None:
    (tmp_path / "haproxy.cfg.j2").write_text("backend b\n  server {{ nosuch.ip }}\n")
    path = tmp_path / "t.yaml"
    path.write_text(TOPOLOGY)
    loader.load_topology(path, require_assertions=False)  # the spec's half: no template rendered
    with pytest.raises(SpecError) as info:
        harness.load_topology(path, require_assertions=False)
    [line] = info.value.problems
    assert line.startswith(f"{path}:4: services.lb.config: ") and "nosuch" in line
