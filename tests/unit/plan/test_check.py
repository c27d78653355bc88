"""Validation's last check sits on the plan's floor (harness/plan/check.py): the spec reads and
cross-checks a topology without building the plan, and every entry point validates through
`harness.plan.check.load_topology`, which builds it once before anything starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import harness
from harness.cli import main
from harness.errors import SpecError
from harness.plan import check
from harness.run import Run
from harness.spec import loader
from tests.unit.spec.test_spec_errors import BASE, edit

BROKEN = "global\n{% for i in %}\n{% endfor %}\n"  # a template syntax error on its line 2


def topology(tmp_path: Path, template: str) -> Path:
    """BASE with lb's config a template, and maxconn above the web pool's 8 workers (a warning)."""
    (tmp_path / "haproxy.cfg.j2").write_text(template)
    path = tmp_path / "t.yaml"
    path.write_text(
        edit(
            "    backends: web\n",
            "    backends: web\n    config: haproxy.cfg.j2\n    maxconn: 100\n",
        )
    )
    return path


def test_the_spec_does_not_build_the_plan_and_the_plan_check_does(tmp_path: Path) -> None:
    path = topology(tmp_path, BROKEN)
    assert loader.load_topology(path).services["lb"].config == "haproxy.cfg.j2"
    warnings: list[str] = []
    with pytest.raises(SpecError) as info:
        check.load_topology(path, warnings=warnings)
    (problem,) = info.value.problems
    line = BASE.splitlines().index("    backends: web") + 2  # the config: line added after it
    assert re.fullmatch(
        rf"{path}:{line}: services\.lb\.config: {tmp_path}/haproxy\.cfg\.j2:2: template syntax "
        r"error: .*\(.*\)",
        problem,
    ), problem
    assert warnings == []  # warnings belong to a valid topology only


def test_a_valid_topology_passes_with_its_warnings(tmp_path: Path) -> None:
    path = topology(tmp_path, "global\n")
    warnings: list[str] = []
    topo = check.load_topology(path, warnings=warnings)
    assert topo == loader.load_topology(path)
    assert len(warnings) == 1 and "services.lb.maxconn: warning: maxconn: 100" in warnings[0]


def test_every_entry_point_validates_with_the_plan_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = topology(tmp_path, BROKEN)
    assert harness.load_topology is check.load_topology
    assert main(["validate", str(path)]) == SpecError.exit_code
    assert "template syntax error" in capsys.readouterr().err
    with pytest.raises(SpecError, match="template syntax error"):
        Run(path, runs_dir=tmp_path / "runs", say=lambda m: None)  # its validate phase
    assert not (tmp_path / "runs").exists()  # refused before the run has even a directory
