"""Point-in-time questions asked of the running containers (no watcher): who holds a service's
VIP right now. Chaos asks it when a fault fires (`vip_holder:lb`, `vip_failover`), the baseline
asks it before any fault.

The answer comes from the container's own network namespace: its local addresses in
/proc/<pid>/net/fib_trie when the engine runs on this machine (a file read, milliseconds), else
`ip addr` through an exec (a process in the container: 100-300 ms on a busy 2-core machine)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from docker.models.containers import Container

from harness.plan.model import RunPlan

PROC = Path("/proc")


def local_addresses(container: Container) -> set[str] | None:
    """The container's local IPv4 addresses read from its network namespace on this machine, or
    None when that is not possible (a remote engine, another pid namespace): ask by exec then.
    The pid is checked to be the container's own (its cgroup names the container id), so a
    remote engine's pid can never be mistaken for a local process."""
    pid = container.attrs.get("State", {}).get("Pid") or 0
    if pid <= 0:
        return None
    try:
        if container.id not in (PROC / str(pid) / "cgroup").read_text():
            return None
        trie = (PROC / str(pid) / "net" / "fib_trie").read_text().splitlines()
    except OSError:
        return None
    return fib_locals(trie)


def fib_locals(trie: list[str]) -> set[str]:
    """`|-- 10.9.0.100` with a `/32 host LOCAL` among the lines under it: a local address."""
    out: set[str] = set()
    leaf = ""
    for line in trie:
        text = line.strip()
        if text.startswith("|-- "):
            leaf = text[4:]
        elif text.startswith("+--") or text.endswith(":"):
            leaf = ""
        elif leaf and text.startswith("/32 host LOCAL"):
            out.add(leaf)
    return out


def holds(container: Container, vip: str) -> bool:
    """Whether a running (not paused) container has `vip` on an interface right now."""
    try:
        container.reload()
    except Exception:  # noqa: BLE001 - gone
        return False
    if container.status != "running":  # a dead or paused LB holds nothing
        return False
    addrs = local_addresses(container)
    if addrs is not None:
        return vip in addrs
    try:
        code, out = container.exec_run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
    except Exception:  # noqa: BLE001 - died meanwhile
        return False
    return code == 0 and f" {vip}/" in out.decode()


def vip_holder(containers: Mapping[str, Container], plan: RunPlan, service: str) -> str | None:
    vip = plan.vips.get(service)
    if vip is None:
        return None
    for c in plan.instances(service):
        container = containers.get(c.instance)
        if container is not None and holds(container, vip):
            return c.instance
    return None
