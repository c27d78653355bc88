"""Each testinfra assertion is judged on its own tests, also when two share a module: the same
module on two services runs as two pytest processes side by side (harness/run/judge.py), each
writes its own JUnit report (named after the assertion's index), publishes gauges labelled with
module and service, and its verdict query reads those. The chain runs for real: pytest
subprocesses, the harness's exporter, and a real Prometheus (tests/promlab.py) for the verdict;
only Docker's containers and the run's Prometheus scrape are stood in for. Two identical
assertions (same module, same service) are refused: they would share their series."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.journal import Journal
from harness.observe import hostcheck
from harness.observe.exporter import HarnessExporter
from harness.plan.build import make_plan
from harness.run import judge
from harness.spec.models import Topology
from harness.verdict.assertions import FAILED, PASSED, evaluate
from harness.verdict.windows import Timeline
from tests.fakes import FakeContainer, FakeProm
from tests.promlab import BASE as T0
from tests.promlab import PromLab
from tests.unit.spec.test_issue11_validation import one, valid
from tests.unit.spec.test_spec_errors import edit

RUN = "r1"
# Fails on the web nodes, passes on the database: the module alone cannot tell the two apart.
MODULE = """
def test_not_a_web_node(request):
    assert "-web-" not in request.config.getoption("hosts")
"""


def services() -> dict[str, object]:
    return {
        "lb": {"kind": "haproxy", "backends": "web"},
        "web": {"kind": "web", "replicas": 2},
        "redis": {"kind": "redis"},
        "db": {"kind": "mariadb"},
    }


@pytest.fixture
def checks(tmp_path: Path) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "test_node.py").write_text(MODULE)
    return tmp_path


def test_the_same_module_on_two_services_writes_two_reports(checks: Path) -> None:
    topo = Topology.model_validate({"version": 1, "name": "t", "services": services()})
    plan = make_plan(topo, RUN, "10.99.0.0/24", [])
    run_dir = checks / "run"
    run_dir.mkdir()
    module = checks / "checks" / "test_node.py"
    running = {"web-1", "web-2", "db"}
    with ThreadPoolExecutor(2) as pool:
        on_web = pool.submit(hostcheck.run_module, module, plan, "web", run_dir, running, index=3)
        on_db = pool.submit(hostcheck.run_module, module, plan, "db", run_dir, running, index=4)
        assert (on_web.result(), on_db.result()) == ((0, 1), (1, 0))
    assert sorted(p.name for p in run_dir.glob("*.xml")) == [
        "testinfra-3-test_node.xml",
        "testinfra-4-test_node.xml",
    ]
    assert "-web-" in (run_dir / "testinfra-3-test_node.log").read_text()


def test_one_module_passing_on_one_service_and_failing_on_another_is_judged_per_service(
    checks: Path, promlab: PromLab
) -> None:
    module = "checks/test_node.py"
    topo = Topology.model_validate(
        {
            "version": 1,
            "name": "t",
            "services": services(),
            "assertions": [
                {"name": "web checked", "testinfra": {"module": module, "hosts": "web"}},
                {"name": "db checked", "testinfra": {"module": module, "hosts": "db"}},
            ],
        }
    )
    run_dir = checks / "run"
    run_dir.mkdir()
    exporter = HarnessExporter("127.0.0.1", 0)
    stamp = "harness_post_run_timestamp_seconds"
    end = T0 + 30
    run = SimpleNamespace(
        run_id=RUN,
        topo=topo,
        plan=make_plan(topo, RUN, "10.99.0.0/24", []),
        stack=SimpleNamespace(containers={i: FakeContainer(i) for i in ("web-1", "web-2", "db")}),
        # The run's Prometheus sees what the exporter publishes (its scrape stood in for).
        prom=FakeProm({stamp: lambda q: exporter.registry.get_sample_value(stamp)}),
        exporter=exporter,
        timeline=Timeline(T0, end, {}),
        journal=Journal(run_dir, RUN, "t", str(checks / "t.yaml")),
        run_dir=run_dir,
        topology_file=str(checks / "t.yaml"),
    )
    run.check_testinfra = lambda spec, index: judge.testinfra(run, spec, index)
    try:
        judge.post_run(run)
        published = [
            (family.name, sample.labels, sample.value)
            for family in exporter.registry.collect()
            if family.name.startswith("harness_testinfra")
            for sample in family.samples
        ]
    finally:
        exporter.close()

    # The run's Prometheus, with what the exporter published scraped every second.
    post = end + 2
    lab = promlab
    times = lab.scrape_times(T0 - 3, post + 3)
    for inst, job in (("locust", "locust"), ("harness", "harness")):
        lab.scrape_target(job, inst, RUN, [(t, 1.0) for t in times])
    for name, labels, value in published:
        series = {"run": RUN, "instance": "harness", **labels}
        lab.gauge(name, series, [(t, value) for t in times if t >= end])
    lab.start()
    tl = Timeline(T0, end, {}, post_at=post)
    web, db = (evaluate(a, lab.prom, RUN, tl, topo) for a in topo.assertions)
    assert (web.name, web.status, web.measured) == ("web checked", FAILED, 1.0)
    assert (db.name, db.status, db.measured) == ("db checked", PASSED, 0.0)
    [phase] = run.journal["phases"]
    assert phase["testinfra"] == {
        f"{module} on web": {"passed": 0, "failed": 1},
        f"{module} on db": {"passed": 1, "failed": 0},
    }


def test_the_same_module_twice_on_one_service_is_refused(checks: Path) -> None:
    twice = "  - {name: one, testinfra: {module: checks/test_node.py, hosts: web}}"
    again = twice.replace("checks/", "./checks/").replace("one", "two")  # the same file
    text = edit("  - error_budget: {max_error_ratio: 0.01}", f"{twice}\n{again}")
    line = one(
        checks, text, 26, "assertions[2].testinfra.module", "already runs on web in assertions[1]"
    )
    assert line.endswith("(keep one of the two)")
    other = text.replace(again, again.replace("hosts: web", "hosts: mysql"))
    assert len(valid(checks, other).assertions) == 3
