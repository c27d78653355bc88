"""vip_holder reads the container's own namespace (/proc/<pid>/net/fib_trie) when the engine is
on this machine, checks the pid is the container's, and falls back to an exec otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.runtime import probe
from tests.fakes import FakeContainer

TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.9.0.0/24 2 1 2
        |-- 10.9.0.0
           /24 link UNICAST
        |-- 10.9.0.10
           /32 host LOCAL
        |-- 10.9.0.100
           /32 host LOCAL
        |-- 10.9.0.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
"""


def test_fib_locals_are_the_host_local_leaves() -> None:
    assert probe.fib_locals(TRIE.splitlines()) == {"10.9.0.10", "10.9.0.100"}
    assert probe.fib_locals(
        TRIE.replace(
            "10.9.0.100\n           /32 host LOCAL", "10.9.0.100\n           /32 link BROADCAST"
        ).splitlines()
    ) == {"10.9.0.10"}


def fake_proc(tmp: Path, pid: int, cgroup: str, trie: str) -> None:
    d = tmp / str(pid)
    (d / "net").mkdir(parents=True)
    (d / "cgroup").write_text(cgroup)
    (d / "net" / "fib_trie").write_text(trie)


def test_read_from_proc_without_an_exec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probe, "PROC", tmp_path)
    c = FakeContainer("lb-1", "10.9.0.10")  # its exec would answer without the VIP
    c.attrs["State"] = {"Pid": 4242}
    fake_proc(tmp_path, 4242, f"0::/docker/{c.id}\n", TRIE)
    assert probe.holds(c, "10.9.0.100")
    assert not c.named("exec")
    c.alive = False
    c.status = "paused"  # a paused holder answers nobody: it holds nothing
    assert not probe.holds(c, "10.9.0.100")


def test_a_pid_of_another_process_falls_back_to_exec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote engine's pid may be any local process: its cgroup does not name the container,
    so the namespace is not read and the exec answers."""
    monkeypatch.setattr(probe, "PROC", tmp_path)
    c = FakeContainer("lb-1", "10.9.0.10")
    c.attrs["State"] = {"Pid": 4242}
    fake_proc(tmp_path, 4242, "0::/user.slice/something-else\n", TRIE)
    assert probe.local_addresses(c) is None
    assert not probe.holds(c, "10.9.0.100")  # the exec's `ip addr` has only 10.9.0.10
    c.addrs.append("10.9.0.100")
    assert probe.holds(c, "10.9.0.100")
