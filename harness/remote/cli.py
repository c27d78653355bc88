"""`harness hosts check FILE` and `harness hosts chaos FILE [--dry-run] [--i-know]`: the
`runtime: hosts` commands (registered by harness/cli.py)."""

from __future__ import annotations

import argparse
import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.errors import EXIT_INCONCLUSIVE, EXIT_OK, HarnessError, SpecError
from harness.journal import Journal, RunStatus
from harness.plan.check import load_topology
from harness.remote.chaos import HostChaos, occurrences
from harness.remote.faults import build
from harness.remote.shell import DryShell, Shell, SshShell
from harness.remote.targets import Host, hosts_of, refuse_outside, refuse_unconfirmed
from harness.runtime.signals import exit_signals
from harness.spec.models import Topology


def _load(path: str) -> tuple[Topology, dict[str, Host]]:
    topo = load_topology(path, require_assertions=False)
    if topo.runtime != "hosts":
        raise SpecError(
            [
                f"{path}: runtime: this topology runs on docker (add runtime: hosts and hosts: to use it here)"
            ]
        )
    hosts = hosts_of(topo)
    refuse_outside(topo, hosts, path)  # before any connection
    return topo, hosts


def dry_run(topo: Topology, hosts: dict[str, Host], say: Any, run_id: str = "DRYRUN") -> DryShell:
    """Every command, on every host, in schedule order; nothing is run anywhere."""
    shell = HostChaos(topo, hosts, DryShell(say), None, run_id, say).shell
    assert isinstance(shell, DryShell)
    chaos = HostChaos(topo, hosts, shell, None, run_id, say)
    for at, name, step in occurrences(topo):
        say(f"at {at:g}s: {name}")
        f = build(step, topo, hosts, shell, run_id, chaos.rng)
        for h, cmd in f.inject:
            shell.run(h, cmd)
        end = f"at {at + step.for_:g}s" if step.for_ is not None else "when the schedule ends"
        say(f"  undone {end}:")
        for h, cmd in f.rollback:
            shell.run(h, cmd)
    return shell


def targets_by_step(topo: Topology, hosts: dict[str, Host]) -> dict[str, list[str]]:
    """Which instances each step may touch (the dry-run plan; a VIP failover may hit any LB)."""
    shell = DryShell(lambda _m: None)
    chaos = HostChaos(topo, hosts, shell, None, "CHECK", lambda _m: None)
    out: dict[str, list[str]] = {}
    for _at, _name, step in occurrences(topo):
        f = build(step, topo, hosts, shell, "CHECK", chaos.rng)
        touched = set(f.targets)
        if step.fault.kind == "vip_failover":
            touched |= {i for i, h in hosts.items() if h.service == step.fault.params.service}
        out.setdefault(step.name, [])
        out[step.name] = sorted(set(out[step.name]) | touched)
    return out


def cmd_check(args: argparse.Namespace) -> int:
    topo, hosts = _load(args.topology)
    shell: Shell = SshShell(args.ssh_config)
    bad = 0
    probe = "uname -sr; for t in systemctl iptables tc journalctl; do command -v $t >/dev/null && echo have:$t || echo missing:$t; done"
    for h in hosts.values():
        try:
            res = shell.run(h, probe)
        except HarnessError as exc:
            print(f"{h.instance} {h.url}: UNREACHABLE {exc}")
            bad += 1
            continue
        lines = res.out.strip().splitlines()
        missing = [x.split(":", 1)[1] for x in lines if x.startswith("missing:")]
        print(
            f"{h.instance} {h.url}: {lines[0] if lines else '?'}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + ("; lab" if h.lab else "")
        )
    return EXIT_OK if not bad else EXIT_INCONCLUSIVE


def cmd_chaos(args: argparse.Namespace) -> int:
    topo, hosts = _load(args.topology)
    if args.dry_run:
        dry_run(topo, hosts, print)
        return EXIT_OK
    refuse_unconfirmed(topo, hosts, targets_by_step(topo, hosts), args.i_know, args.topology)
    run_id = f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    run_dir = Path(args.runs_dir) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(run_dir, run_id, topo.name, str(args.topology))
    journal.data["runtime"] = "hosts"
    print(
        f"run {run_id}: chaos on {len(hosts)} host(s) for {topo.load.duration:g}s; journal {run_dir}"
    )
    chaos = HostChaos(topo, hosts, SshShell(args.ssh_config), journal, run_id, print)
    code, status = EXIT_INCONCLUSIVE, RunStatus.ERROR
    try:
        with exit_signals():
            try:
                chaos.run(args.duration if args.duration is not None else topo.load.duration)
            finally:
                chaos.close()
        code, status = EXIT_OK, RunStatus.PASSED
    except HarnessError as exc:
        journal.data["error"] = str(exc)
        raise
    finally:
        journal.data.update(status=status, exit_code=code, ended_at=time.time())
        journal.save()
    return code


def add_parser(sub: Any) -> None:
    h = sub.add_parser(
        "hosts", help="runtime: hosts: check the machines, or apply the chaos over SSH"
    )
    hs = h.add_subparsers(dest="hosts_action", required=True)
    c = hs.add_parser("check", help="connect to every host; say which tools it lacks")
    c.add_argument("topology")
    c.add_argument(
        "--ssh-config", help="an ssh config file (default: yours, or HARNESS_SSH_CONFIG)"
    )
    c.set_defaults(func=cmd_check)
    ch = hs.add_parser(
        "chaos", help="apply the topology's chaos steps to its hosts on schedule, then undo them"
    )
    ch.add_argument("topology")
    ch.add_argument(
        "--dry-run", action="store_true", help="print every command for every host; run none"
    )
    ch.add_argument(
        "--i-know",
        action="store_true",
        help="allow destructive faults on hosts not marked lab: true",
    )
    ch.add_argument("--runs-dir", default="runs", help="where runs/<run-id>/journal.json goes")
    ch.add_argument("--duration", type=float, help="length of the schedule (default load.duration)")
    ch.add_argument(
        "--ssh-config", help="an ssh config file (default: yours, or HARNESS_SSH_CONFIG)"
    )
    ch.set_defaults(func=cmd_chaos)
