"""`harness status` says who is primary (issue 12, ask 6): harness/runtime/primary.py runs one
shell probe in every container. Here the probe runs for real in `sh` on this machine, with
stand-ins for the servers' own clients on PATH (`pgrep`, `mysql`, `redis-cli`), through an
object that execs like a Docker container does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.runtime.primary import role


class LocalContainer:
    """Runs `exec_run` here, with `bin` first on PATH."""

    def __init__(self, bin_dir: Path, status: str = "running") -> None:
        self.bin, self.status = bin_dir, status

    def exec_run(self, cmd: list[str]) -> tuple[int, bytes]:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}"}
        p = subprocess.run(cmd, capture_output=True, env=env, timeout=10)
        return p.returncode, p.stdout


def server(tmp_path: Path, process: str, client: str, answer: str) -> LocalContainer:
    b = tmp_path / "bin"
    b.mkdir()
    (b / "pgrep").write_text(f'#!/bin/sh\n[ "$2" = "{process}" ]\n')
    (b / client).write_text(f"#!/bin/sh\nprintf '%s\\n' {answer}\n")
    for f in b.iterdir():
        f.chmod(0o755)
    return LocalContainer(b)


@pytest.mark.parametrize(
    ("process", "client", "answer", "want"),
    [
        ("mysqld", "mysql", "0", "primary"),
        ("mysqld", "mysql", "1", "replica"),
        ("redis-server", "redis-cli", "master 1234", "primary"),
        ("redis-server", "redis-cli", "slave 10.0.0.2", "replica"),
        ("nginx", "mysql", "0", ""),  # not a data server: no role
    ],
)
def test_the_probe_names_the_primary(
    tmp_path: Path, process: str, client: str, answer: str, want: str
) -> None:
    assert role(server(tmp_path, process, client, answer)) == want


def test_a_stopped_container_or_a_failing_client_has_no_role(tmp_path: Path) -> None:
    c = server(tmp_path, "mysqld", "mysql", "0")
    (c.bin / "mysql").write_text("#!/bin/sh\nexit 1\n")
    assert role(c) == ""
    assert role(LocalContainer(c.bin, status="exited")) == ""
