"""observe/hostcheck.py: a user's testinfra module runs in a pytest subprocess against the
service's running instances, and its JUnit XML is counted (the checks here use no `host`, so
no container is needed; the docker:// targets are still handed to testinfra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InfrastructureError
from harness.observe import hostcheck
from harness.plan.build import make_plan
from harness.plan.model import RunPlan
from harness.spec.models import Topology

MODULE = """
import pytest

def test_passes():
    assert 1 + 1 == 2

def test_fails():
    assert "nginx" == "apache"

def test_errors(missing_fixture):
    pass

@pytest.mark.skip(reason="not here")
def test_skipped():
    pass

def test_sees_the_running_hosts(request):
    hosts = request.config.getoption("hosts")
    assert hosts == "docker://harness-r1-web-1,docker://harness-r1-web-3", hosts
"""


@pytest.fixture
def plan() -> RunPlan:
    topo = Topology.model_validate(
        {
            "version": 1,
            "name": "t",
            "services": {
                "lb": {"kind": "haproxy", "backends": "web"},
                "web": {"kind": "web", "replicas": 3},
                "redis": {"kind": "redis"},
                "db": {"kind": "mariadb"},
            },
        }
    )
    return make_plan(topo, "r1", "10.99.0.0/24", [])


def test_passed_and_failed_are_counted_from_the_junit_report(plan: RunPlan, tmp_path: Path) -> None:
    module = tmp_path / "checks" / "test_web.py"
    module.parent.mkdir()
    module.write_text(MODULE)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    passed, failed = hostcheck.run_module(
        module, plan, "web", run_dir, {"web-1", "web-3", "db"}, index=2
    )
    assert (passed, failed) == (2, 2)  # an error counts as failed; a skip as neither
    assert (run_dir / "testinfra-2-test_web.xml").exists()
    assert "test_fails" in (run_dir / "testinfra-2-test_web.log").read_text()


def test_no_running_instance_is_an_infrastructure_error(plan: RunPlan, tmp_path: Path) -> None:
    with pytest.raises(InfrastructureError, match="no running instance of web"):
        hostcheck.run_module(tmp_path / "test_x.py", plan, "web", tmp_path, {"db"}, index=0)


def test_a_module_that_does_not_import_counts_as_failed(plan: RunPlan, tmp_path: Path) -> None:
    module = tmp_path / "test_broken.py"
    module.write_text("def test_x(:\n")
    assert hostcheck.run_module(module, plan, "web", tmp_path, {"web-2"}, index=0) == (0, 1)
