"""The post-run measurements of a `runtime: hosts` run, made over SSH as the docker runtime
makes them in containers (harness/run/judge.post_run publishes and awaits them the same way):

- `testinfra:` runs the module with testinfra's `ssh://` backend against every host of the
  service (`--ssh-config` when the run has one): the hosts' faults are all undone by then, so
  every host is checked;
- `no_lost_writes` reads the stored order ids on the database's host (`control.read_orders`,
  else the kind's command with the SSH user's own credentials; a database with a VIP: on its
  holder, the primary) and compares them with the ids the clients saw acknowledged."""

from __future__ import annotations

import os
from pathlib import Path

from harness import kinds
from harness.errors import InfrastructureError
from harness.observe import hostcheck, writes
from harness.remote.faults import holder_probe
from harness.remote.shell import NO_MASTER, SSH_CONFIG_ENV, Shell
from harness.remote.targets import Host
from harness.spec.models import Topology


def database(topo: Topology) -> str | None:
    """The service whose stored orders are checked: the first whose kind reads orders."""
    return next((n for n, s in topo.services.items() if kinds.descriptor(s.kind).read_orders), None)


def read_orders_command(topo: Topology, service: str) -> str | None:
    ctl = topo.services[service].control
    if ctl is not None and ctl.read_orders:
        return ctl.read_orders
    return kinds.descriptor(topo.services[service].kind).host_read_orders


def refusals(topo: Topology, source: str) -> list[str]:
    """What cannot be measured on these hosts, one line each (file, field, fix)."""
    if not any(a.kind == "no_lost_writes" for a in topo.assertions):
        return []
    db = database(topo)
    if db is not None and read_orders_command(topo, db) is None:
        return [
            f"{source}: services.{db}.control.read_orders: no_lost_writes needs the command "
            f"printing the stored order ids on {db}'s hosts (add e.g. read_orders: "
            "\"mysql -N -B -e 'SELECT id FROM app.orders'\")"
        ]
    return []


def primary(topo: Topology, hosts: dict[str, Host], shell: Shell, service: str) -> Host:
    """The host to read from: the VIP holder of a database with `keepalived:`, else its first."""
    mine = [h for h in hosts.values() if h.service == service]
    ka = getattr(topo.services[service], "keepalived", None)
    if ka is None or ka.vip == "auto" or len(mine) < 2:
        return mine[0]
    for h in mine:
        if "holder" in shell.run(h, holder_probe(ka.vip)).out:
            return h
    raise InfrastructureError(
        f"no host of {service} holds its VIP {ka.vip} after the run, so there is no primary to "
        "check writes against"
    )


def stored_ids(topo: Topology, hosts: dict[str, Host], shell: Shell) -> set[str]:
    db = database(topo)
    if db is None:
        raise InfrastructureError("no database service to check writes against")
    cmd = read_orders_command(topo, db)
    assert cmd is not None  # refused at validation
    host = primary(topo, hosts, shell, db)
    res = shell.run(host, cmd)
    if res.rc != 0:
        raise InfrastructureError(
            f"cannot read orders on {host.instance} ({host.url}): `{cmd}` exited {res.rc}: "
            f"{res.err.strip()[-200:]} (fix services.{db}.control.read_orders)"
        )
    return set(res.out.split())


def check_writes(
    topo: Topology, hosts: dict[str, Host], shell: Shell, run_dir: Path
) -> tuple[int, int, list[str]]:
    """(acknowledged ids checked, missing on the database host, a sample of the missing)."""
    return writes.tally(run_dir, stored_ids(topo, hosts, shell))


def check_testinfra(
    module: Path,
    hosts: dict[str, Host],
    service: str,
    run_dir: Path,
    *,
    index: int,
    ssh_config: str | None = None,
) -> tuple[int, int]:
    """(passed, failed) of `module` against every host of `service`, over ssh://."""
    urls = [h.url for h in hosts.values() if h.service == service]
    if not urls:
        raise InfrastructureError(f"testinfra {module.name}: {service} has no hosts to check")
    cfg = ssh_config or os.environ.get(SSH_CONFIG_ENV)
    # no ControlMaster made or used, whatever the user's ssh config says, so none outlives
    # pytest (testinfra adds its own ControlMaster options only when these name none)
    extra = (f"--ssh-extra-args={NO_MASTER}", *((f"--ssh-config={cfg}",) if cfg else ()))
    return hostcheck.run_pytest(module, urls, run_dir, index=index, extra=extra)
