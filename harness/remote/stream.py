"""A long-running command on a host over SSH, its output handed over line by line as it
arrives (`tail -F` of a log, `journalctl -f`, a sampling loop). The OpenSSH client runs it, with
the same ssh config the faults use (`HARNESS_SSH_CONFIG`), so keys, agent and jump hosts apply;
the remote command ends by itself at `until` (the loop's own deadline) or when ssh is closed.

A command that follows something (a log) prints `READY` once it can read it, else exits with a
code of its own: `following` says whether it is reading now, `rc` how it last ended."""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from harness.remote.shell import NO_MASTER, SSH_CONFIG_ENV
from harness.remote.targets import Host

READY = "harness: following"  # a following command's first line (never handed on)


def ssh_argv(host: Host, command: str, ssh_config: str | None = None) -> list[str]:
    """`ssh [-F config] [-p port] [user@]addr sh -c COMMAND`, batch mode (never a prompt), its
    own connection (no ControlMaster made or used, whatever the ssh config says)."""
    url = urlsplit(host.url)
    cfg = ssh_config or os.environ.get(SSH_CONFIG_ENV)
    argv = ["ssh", *(["-F", cfg] if cfg else []), "-o", "BatchMode=yes", *NO_MASTER.split()]
    argv += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
    if url.port:
        argv += ["-p", str(url.port)]
    target = f"{url.username}@{url.hostname}" if url.username else str(url.hostname)
    return [*argv, target, f"sh -c {shlex.quote(command)}"]


class Stream:
    """Runs `command` on `host` until stopped, again after a broken connection (while `until`
    is ahead), calling `on_line(received_at, line)` for every line."""

    def __init__(
        self,
        host: Host,
        command: str,
        on_line: Callable[[float, str], None],
        until: float,
        ssh_config: str | None = None,
        on_exit: Callable[[float], None] = lambda at: None,
    ) -> None:
        self.host, self.command, self.on_line, self.until = host, command, on_line, until
        self.ssh_config, self.on_exit = ssh_config, on_exit
        self.stopped = threading.Event()
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0
        self.following = False  # the command said READY and has not ended since
        self.rc: int | None = None  # its last exit status (255: ssh itself failed)
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"ssh-{host.instance}")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _run(self) -> None:
        while not self.stopped.is_set() and time.time() < self.until:
            self.starts += 1
            self.proc = subprocess.Popen(
                ssh_argv(self.host, self.command, self.ssh_config),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.rstrip("\n")
                if line == READY:
                    self.following = True
                else:
                    self.on_line(time.time(), line)
            self.rc = self.proc.wait()
            self.following = False
            self.on_exit(time.time())
            self.stopped.wait(1.0)  # the host is gone or rebooting: ask again, not in a spin
