"""pytest plugin the harness adds to a testinfra check (harness/observe/hostcheck.py): once the
tests are collected, what testinfra reads of each host before its first module call (the
system facts: `uname -s`, /etc/os-release, `uname -m`; whether `command -v` works) is read for
all the hosts side by side, instead of by each host's first test in turn (four commands a
host, a `docker exec` or SSH round trip each). Read-only commands, kept in testinfra's own
caches; a host that does not answer is left to its tests, which report it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any


def facts(host: Any) -> None:
    try:
        host.system_info.sysinfo  # noqa: B018 - testinfra caches it on the host
        host.has_command_v  # noqa: B018
    except Exception:  # noqa: BLE001, S110 - the host's tests report what is wrong with it
        pass


def pytest_collection_finish(session: Any) -> None:
    hosts: dict[int, Any] = {}
    for item in session.items:
        host = getattr(item, "callspec", None) and item.callspec.params.get("_testinfra_host")
        if host is not None:
            hosts[id(host)] = host
    if len(hosts) > 1:
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            list(pool.map(facts, hosts.values()))
