"""Running one shell command on a host: through testinfra's `ssh://` backend (the OpenSSH
client, so the user's ssh config and agent apply; `HARNESS_SSH_CONFIG` names another config),
or, for `--dry-run`, only printing it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from harness.errors import InfrastructureError
from harness.remote.targets import Host

SSH_CONFIG_ENV = "HARNESS_SSH_CONFIG"
# Every ssh the harness runs (testinfra's, the watchers', pytest's testinfra modules) makes no
# ControlMaster and uses none, even with a user's `ControlMaster auto` + `ControlPersist` in
# their ssh config, so no master process outlives the run (command-line -o beats the config).
NO_MASTER = "-o ControlMaster=no -o ControlPath=none"


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


class Shell(Protocol):
    def run(self, host: Host, command: str) -> Result: ...


class SshShell:
    """One testinfra host per machine, no ControlMaster (`NO_MASTER`: testinfra then adds
    none of its own either)."""

    def __init__(self, ssh_config: str | None = None, timeout: int = 10) -> None:
        self.ssh_config = ssh_config or os.environ.get(SSH_CONFIG_ENV) or None
        self.timeout = timeout
        self._hosts: dict[str, object] = {}

    def _host(self, host: Host) -> object:
        if host.url not in self._hosts:
            import testinfra

            self._hosts[host.url] = testinfra.get_host(
                host.url, ssh_config=self.ssh_config, timeout=self.timeout, ssh_extra_args=NO_MASTER
            )
        return self._hosts[host.url]

    def run(self, host: Host, command: str) -> Result:
        try:
            res = self._host(host).run("sh -c %s", command)  # type: ignore[attr-defined]
        except RuntimeError as exc:  # testinfra: ssh itself failed (exit 255)
            detail = getattr(exc.args[0], "stderr", "") if exc.args else ""
            raise InfrastructureError(
                f"{host.instance} ({host.url}): ssh failed: {str(detail).strip()[:300]} "
                "(check the address, your ssh config and agent, or HARNESS_SSH_CONFIG)"
            ) from None
        return Result(int(res.rc), str(res.stdout), str(res.stderr))


class DryShell:
    """Prints `[instance url] command` and answers success (with `answers` for probes)."""

    def __init__(self, say: Callable[[str], None], answers: dict[str, str] | None = None) -> None:
        self.say, self.answers = say, answers or {}
        self.commands: list[tuple[str, str]] = []

    def run(self, host: Host, command: str) -> Result:
        self.commands.append((host.instance, command))
        self.say(f"[{host.instance} {host.url}] {command}")
        return Result(0, self.answers.get(command, ""), "")
