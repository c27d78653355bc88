"""harness/runtime/images.py without an engine: which bootstrap tool is used (and the fallback
when the first fails), and build_all's concurrency, order and error collection."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.errors import InfrastructureError, SpecError
from harness.runtime import images


def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **tools: int) -> Path:
    """Executables named after `tools` on PATH, each exiting with the given code and leaving
    its arguments in <name>.args; the mmdebstrap hook directory exists."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, code in tools.items():
        exe = bin_dir / name
        exe.write_text(
            f'#!/bin/sh\necho "$@" > {tmp_path}/{name}.args\necho {name} said no >&2\nexit {code}\n'
        )
        exe.chmod(0o755)
    hook = tmp_path / "hooks" / "merged-usr"
    hook.mkdir(parents=True)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(images, "MMDEBSTRAP_HOOK", str(hook))
    return bin_dir


def test_mmdebstrap_comes_first_then_debootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tools(tmp_path, monkeypatch, mmdebstrap=0, debootstrap=0)
    cmds = images.bootstrap_commands(tmp_path / "rootfs")
    assert [c[0] for c in cmds] == ["mmdebstrap", "debootstrap"]
    mm = cmds[0]
    assert "--variant=minbase" in mm and f"--hook-dir={images.MMDEBSTRAP_HOOK}" in mm
    assert mm[-3:] == ["bookworm", str(tmp_path / "rootfs.tar"), images.MIRROR]
    assert cmds[1][1:] == ["--variant=minbase", "bookworm", str(tmp_path / "rootfs"), images.MIRROR]


def test_without_the_merged_usr_hook_mmdebstrap_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # without the hook mmdebstrap installs usrmerge (and perl): not the same base image
    fake_tools(tmp_path, monkeypatch, mmdebstrap=0, debootstrap=0)
    monkeypatch.setattr(images, "MMDEBSTRAP_HOOK", str(tmp_path / "absent"))
    assert [c[0] for c in images.bootstrap_commands(tmp_path / "rootfs")] == ["debootstrap"]


def test_no_bootstrap_tool_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tools(tmp_path, monkeypatch)
    with pytest.raises(InfrastructureError, match="apt-get install -y mmdebstrap"):
        images.bootstrap_commands(tmp_path / "rootfs")


def test_a_failing_mmdebstrap_falls_back_to_debootstrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tools(tmp_path, monkeypatch, mmdebstrap=1, debootstrap=0)
    said: list[str] = []
    cmd = images._bootstrap(images.bootstrap_commands(tmp_path / "rootfs"), "t", said.append)
    assert cmd[0] == "debootstrap"
    assert (tmp_path / "mmdebstrap.args").exists() and (tmp_path / "debootstrap.args").exists()
    assert [m.split()[3] for m in said] == ["mmdebstrap", "debootstrap"]


def test_when_every_tool_fails_the_error_quotes_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tools(tmp_path, monkeypatch, mmdebstrap=1, debootstrap=2)
    with pytest.raises(InfrastructureError) as err:
        images._bootstrap(images.bootstrap_commands(tmp_path / "rootfs"), "t", lambda _: None)
    msg = str(err.value)
    assert "mmdebstrap said no" in msg and "debootstrap said no" in msg
    assert "Debian mirror" in msg


@dataclass
class Builds:
    running: int = 0
    peak: int = 0
    base: int = 0
    fail: set[str] = field(default_factory=set)


@pytest.fixture
def fake_builds(monkeypatch: pytest.MonkeyPatch) -> Builds:
    """build() replaced by 0.2 s of sleep that counts how many run at once."""
    state = Builds()
    lock = threading.Lock()

    def build(name: str, progress: images.Progress = print) -> str:
        with lock:
            state.running += 1
            state.peak = max(state.peak, state.running)
        time.sleep(0.2)
        with lock:
            state.running -= 1
        if name in state.fail:
            raise InfrastructureError(f"building image {name} failed: no")
        return f"harness/{name}:x"

    def base(progress: images.Progress = print) -> None:
        state.base += 1

    monkeypatch.setattr(images, "build", build)
    monkeypatch.setattr(images, "ensure_base_image", base)
    monkeypatch.setattr(images, "image_tag", lambda n: f"harness/{n}:x")
    monkeypatch.setattr(images, "_exists", lambda tag: False)
    return state


def test_build_all_builds_several_at_once_and_keeps_the_order(
    fake_builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(images.JOBS_ENV, raising=False)
    names = ["web", "data", "lb", "host"]
    t0 = time.monotonic()
    tags = images.build_all(names, lambda _: None, jobs=2)
    assert list(tags) == names and tags["lb"] == "harness/lb:x"
    assert fake_builds.peak == 2 and fake_builds.base == 1
    assert time.monotonic() - t0 < 0.75  # two rounds of 0.2 s, not four


def test_build_jobs_come_from_the_environment(
    fake_builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(images.JOBS_ENV, "1")
    images.build_all(["a", "b", "c"], lambda _: None)
    assert fake_builds.peak == 1


def test_build_all_reports_every_failure_after_the_others_finished(
    fake_builds: Builds,
) -> None:
    fake_builds.fail = {"lb", "data"}
    with pytest.raises(InfrastructureError) as err:
        images.build_all(["data", "web", "lb", "host"], lambda _: None, jobs=4)
    assert "image data failed" in str(err.value) and "image lb failed" in str(err.value)
    assert fake_builds.running == 0


def test_build_all_keeps_every_failure_whatever_its_kind(
    fake_builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Docker or network error (not an InfrastructureError) no longer drops the others."""
    build = images.build

    def flaky(name: str, progress: images.Progress = print) -> str:
        if name == "web":
            raise ConnectionError("engine went away")
        return build(name, progress)

    monkeypatch.setattr(images, "build", flaky)
    fake_builds.fail = {"lb"}
    with pytest.raises(InfrastructureError) as err:
        images.build_all(["web", "lb", "host"], lambda _: None, jobs=3)
    msg = str(err.value)
    assert "building image web failed: engine went away" in msg and "image lb failed" in msg


@pytest.mark.parametrize("given", ["two", "1.5", "0", "-2", "\u00b2"])
def test_a_build_jobs_value_that_is_no_count_is_a_one_line_error(
    given: str, fake_builds: Builds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(images.JOBS_ENV, given)
    with pytest.raises(SpecError) as err:
        images.build_all(["a"], lambda _: None)
    [line] = err.value.problems
    assert line.startswith(f"HARNESS_BUILD_JOBS='{given}': ") and "unset it" in line
    assert fake_builds.base == 0  # said before anything is built


def test_nothing_to_build_needs_no_base_image(fake_builds: Builds) -> None:
    assert images.build_all([], lambda _: None) == {}
    assert fake_builds.base == 0
