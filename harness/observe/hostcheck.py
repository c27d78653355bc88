"""Runs a user's testinfra module against a service's containers (testinfra's docker://
backend; ssh:// on runtime: hosts) in a pytest subprocess, and counts passed and failed tests
from its JUnit XML.

Several assertions run side by side, possibly the same module on two services: each writes
its own report and log, named after its place in the topology's `assertions:` list."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.errors import InfrastructureError
from harness.plan.model import RunPlan
from harness.runtime.labels import container_name

# pytest loads no plugin of the environment by itself (their imports took ~1 s of each check:
# the harness's own, Locust's, hypothesis's): testinfra's is named, and a module's conftest.py
# (next to it) still loads, with the plugins it names in `pytest_plugins`. hostwarm reads
# each host's system facts side by side before the tests.
PLUGINS = ("-p", "testinfra.plugin", "-p", "harness.observe.hostwarm", "-p", "no:cacheprovider")


def run_module(
    module: Path,
    plan: RunPlan,
    service: str,
    run_dir: Path,
    running: set[str],
    *,
    index: int,
    timeout: float = 300,
) -> tuple[int, int]:
    """Run against the service's running instances (a node a fault left dead is not checked)."""
    targets = [c.instance for c in plan.instances(service) if c.instance in running]
    if not targets:
        raise InfrastructureError(
            f"testinfra {module.name}: no running instance of {service} to check"
        )
    hosts = [f"docker://{container_name(plan.run_id, i)}" for i in targets]
    return run_pytest(module, hosts, run_dir, index=index, timeout=timeout)


def run_pytest(
    module: Path,
    hosts: list[str],
    run_dir: Path,
    *,
    index: int,
    extra: tuple[str, ...] = (),
    timeout: float = 300,
) -> tuple[int, int]:
    """(passed, failed) of `module` run by pytest against testinfra `hosts` (backend URLs:
    docker://NAME, ssh://USER@ADDR, ...); `extra`: more pytest arguments (e.g. --ssh-config).
    The report and log are named after the assertion's place in the list (`index`)."""
    name = f"testinfra-{index}-{module.stem}"
    report = run_dir / f"{name}.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(module),
            f"--hosts={','.join(hosts)}",
            *extra,
            "-q",
            *PLUGINS,
            f"--junitxml={report}",
            "--rootdir",
            str(module.parent),
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    (run_dir / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if not report.exists():
        raise InfrastructureError(
            f"testinfra module {module} did not run: {(proc.stdout + proc.stderr)[-300:]}"
        )
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite") or suite
    tests = int(suite.get("tests", 0))
    bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    return tests - bad - int(suite.get("skipped", 0)), bad
