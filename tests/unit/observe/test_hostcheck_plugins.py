"""observe/hostcheck.run_pytest starts pytest without the environment's plugins (their imports
took ~1 s of every check): testinfra's `host` fixture is there all the same, and a conftest.py
next to the module loads, with the plugins it names in `pytest_plugins`; hostwarm reads the
hosts' system facts side by side before the tests."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from harness.observe import hostcheck, hostwarm

MODULE = """
import os


def test_host_runs_commands(host):
    assert host.run("echo testinfra").stdout.strip() == "testinfra"
    assert host.backend.NAME == "local"


def test_entry_point_plugins_stay_out(request):
    assert os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] == "1"
    assert not request.config.pluginmanager.has_plugin("harness")  # the harness's own
    assert not request.config.pluginmanager.has_plugin("locust")


def test_the_conftest_and_its_plugins_load(greeting, from_plugin):
    assert (greeting, from_plugin) == ("from conftest", "from a plugin conftest names")
"""

PLUGIN = """
import pytest


@pytest.fixture
def from_plugin():
    return "from a plugin conftest names"
"""

CONFTEST = """
import pytest

pytest_plugins = ["userplugin"]


@pytest.fixture
def greeting():
    return "from conftest"
"""


def test_host_conftest_and_named_plugins_load_without_autoload(tmp_path: Path) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "test_node.py").write_text(MODULE)
    (checks / "conftest.py").write_text(CONFTEST)
    (checks / "userplugin.py").write_text(PLUGIN)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    t0 = time.monotonic()
    result = hostcheck.run_pytest(checks / "test_node.py", ["local://"], run_dir, index=5)
    took = time.monotonic() - t0
    log = (run_dir / "testinfra-5-test_node.log").read_text()
    assert result == (3, 0), log
    assert took < 5, took  # was ~1.3 s of plugin imports alone on a quiet machine


class SlowHost:
    """A testinfra Host whose system facts take 0.3 s to read (a `docker exec` each)."""

    def __init__(self, fails: bool = False) -> None:
        self.fails, self.reads = fails, 0
        self.system_info = self

    @property
    def sysinfo(self) -> dict[str, str]:
        self.reads += 1
        time.sleep(0.3)
        if self.fails:
            raise AssertionError("Unexpected exit code 1")
        return {"type": "linux"}

    has_command_v = True


def test_each_hosts_facts_are_read_side_by_side_before_the_tests() -> None:
    hosts = [SlowHost(), SlowHost(), SlowHost(fails=True)]
    items = [
        SimpleNamespace(callspec=SimpleNamespace(params={"_testinfra_host": h}))
        for h in hosts + hosts  # two tests a host
    ] + [SimpleNamespace()]  # a test without `host`
    t0 = time.monotonic()
    hostwarm.pytest_collection_finish(SimpleNamespace(items=items))
    assert time.monotonic() - t0 < 0.75  # not 3 x 0.3 s in turn
    assert [h.reads for h in hosts] == [1, 1, 1]  # a failing host is left to its tests
