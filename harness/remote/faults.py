"""Faults on existing machines as shell commands, each paired with the commands that undo it.

| fault | on the host | undone by |
|---|---|---|
| kill | `systemctl kill -s KILL UNIT` (or `control.kill`) | `systemctl start UNIT` |
| stop | `systemctl stop UNIT` (or `control.stop`) | `systemctl start UNIT` |
| restart | stop, then start | start (idempotent) |
| vip_failover | on the VIP holder: kill the LB unit (`method: kill`) or stop keepalived | start it |
| partition | `iptables -I INPUT/OUTPUT ... -j DROP` per peer, tagged `harness:<run>` | `iptables -D` of exactly those rules, until none is left |
| latency | `tc` prio qdisc (handle 4e55:) + `netem` band + one u32 filter per peer on the link's `from` hosts | `tc qdisc del ... root` only when the root is the harness's 4e55: |

A killed service is started again when the fault is rolled back: on real machines the harness
leaves every host as it found it (the docker runtime's `restore: false` has no counterpart).
Undo commands are idempotent, so `harness gc` may run them for a fault that was only partly
applied. The partition never drops the harness's own SSH traffic: its peers are the topology's
hosts, and the machine running the harness is not one of them.
"""

from __future__ import annotations

import random
import shlex
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InfrastructureError
from harness.kinds.toxiproxy import upstream_port
from harness.remote.relay import Relays, dnat, local_address_toward
from harness.remote.shell import Result, Shell
from harness.remote.targets import Host, default_unit
from harness.spec.models import (
    ChaosStep,
    HAProxyService,
    NginxLBService,
    TargetSpec,
    Topology,
)

QDISC = "4e55"  # the harness's tc handle: rollback removes a root qdisc only when it is this one


@dataclass
class HostFault:
    """One chaos step on one or more hosts: what to run, and what undoes it."""

    name: str
    kind: str
    inject: list[tuple[Host, str]] = field(default_factory=list)
    rollback: list[tuple[Host, str]] = field(default_factory=list)
    note: str = ""
    relays: list[str] = field(default_factory=list)  # its proxies in the run's Relays

    @property
    def targets(self) -> list[str]:
        return sorted({h.instance for h, _ in self.inject})

    def detail(self) -> dict[str, Any]:
        """What undoing the fault needs, journaled before it is applied."""

        def rows(pairs: list[tuple[Host, str]]) -> list[dict[str, str]]:
            return [{"instance": h.instance, "url": h.url, "command": c} for h, c in pairs]

        return {"runtime": "hosts", "inject": rows(self.inject), "rollback": rows(self.rollback)}

    def apply(self, shell: Shell) -> None:
        for host, cmd in self.inject:
            check(host, cmd, shell.run(host, cmd))

    def undo(self, shell: Shell) -> list[str]:
        """Run every undo command (all of them, even after one fails); the failures, as text."""
        failed = []
        for host, cmd in self.rollback:
            try:
                res = shell.run(host, cmd)
            except InfrastructureError as exc:
                failed.append(str(exc))
                continue
            if res.rc != 0:
                failed.append(f"{host.instance}: `{cmd}` exited {res.rc}: {res.err.strip()[:200]}")
        return failed


def check(host: Host, cmd: str, res: Result) -> None:
    if res.rc != 0:
        hint = ""
        if "netem" in cmd and "unknown" in (res.err + res.out).lower():
            hint = " (this kernel has no netem qdisc: load sch_netem, or use a kernel with it)"
        raise InfrastructureError(
            f"{host.instance} ({host.url}): `{cmd}` exited {res.rc}: "
            f"{(res.err or res.out).strip()[:300]}{hint}"
        )


def _control(topo: Topology, service: str) -> tuple[str, str, str]:
    """(stop, start, kill) commands for a service's hosts."""
    svc = topo.services[service]
    ctl = svc.control
    unit = shlex.quote((ctl.unit if ctl and ctl.unit else None) or default_unit(svc.kind, service))
    return (
        (ctl.stop if ctl and ctl.stop else None) or f"systemctl stop {unit}",
        (ctl.start if ctl and ctl.start else None) or f"systemctl start {unit}",
        (ctl.kill if ctl and ctl.kill else None) or f"systemctl kill -s KILL {unit}",
    )


def pick(target: Any, hosts: dict[str, Host], rng: random.Random) -> list[Host]:
    """An instance, a service (all its hosts), or a TargetSpec's seeded pick."""
    if isinstance(target, str):
        if target in hosts:
            return [hosts[target]]
        of = [h for h in hosts.values() if h.service == target]
        if of:
            return of
        raise InfrastructureError(f"no host '{target}' in the topology")
    assert isinstance(target, TargetSpec)
    pool = [h for h in hosts.values() if h.service == target.service]
    n = target.count or (max(1, round(len(pool) * target.percent / 100)) if target.percent else 1)
    if target.pick == "all":
        return pool
    if target.pick == "first":
        return pool[:n]
    if target.pick == "last":
        return pool[-n:]
    return rng.sample(pool, min(n, len(pool)))


def _peers(topo: Topology, hosts: dict[str, Host], peers: Any, exclude: set[str]) -> list[Host]:
    if peers == "all":
        return [h for i, h in hosts.items() if i not in exclude]
    out: list[Host] = []
    for p in peers:
        out += [h for i, h in hosts.items() if (i == p or h.service == p) and i not in exclude]
    return out


def vip_of(topo: Topology, service: str) -> str:
    svc = topo.services[service]
    ka = svc.keepalived if isinstance(svc, HAProxyService | NginxLBService) else None
    if ka is None or ka.vip == "auto":
        raise InfrastructureError(
            f"vip_failover on {service}: runtime: hosts needs its keepalived.vip as an address"
        )
    return ka.vip


def holder_probe(vip: str) -> str:
    return f"ip -o -4 addr show | grep -qw {shlex.quote(vip)} && echo holder || true"


def build(
    step: ChaosStep,
    topo: Topology,
    hosts: dict[str, Host],
    shell: Shell,
    run_id: str,
    rng: random.Random,
    relays: Relays | None = None,
) -> HostFault:
    """The step's fault as commands. vip_failover asks the hosts (through `shell`) which one
    holds the VIP now, so it is built at injection time. A latency on a link written
    `via: toxiproxy` opens its proxies in `relays` (harness/remote/relay.py; None: a dry run,
    which names the relay RELAY)."""
    fault = step.fault
    kind, p = fault.kind, fault.params
    f = HostFault(step.name, kind)
    if kind in ("kill", "stop", "restart"):
        for h in pick(p.target, hosts, rng):
            stop, start, kill = _control(topo, h.service)
            f.inject += [(h, kill)] if kind == "kill" else [(h, stop)]
            if kind == "restart":
                f.inject.append((h, start))
            f.rollback.append((h, start))
    elif kind == "vip_failover":
        vip = vip_of(topo, p.service)
        lbs = [h for h in hosts.values() if h.service == p.service]
        holders = [h for h in lbs if "holder" in shell.run(h, holder_probe(vip)).out]
        holder = holders[0] if holders else lbs[0]
        f.note = f"VIP {vip} held by {holder.instance}" if holders else f"VIP {vip}: no holder seen"
        if p.method == "stop_keepalived":
            inject, undo = "systemctl stop keepalived", "systemctl start keepalived"
            ctl = topo.services[p.service].control
            if ctl is not None and ctl.unit == "keepalived":
                inject, undo = _control(topo, p.service)[:2]
        else:
            stop, start, kill = _control(topo, p.service)
            inject, undo = kill, start
        f.inject.append((holder, inject))
        f.rollback.append((holder, undo))
    elif kind == "partition":
        for h in pick(p.target, hosts, rng):
            tag = f"harness:{run_id}"
            for peer in _peers(topo, hosts, p.peers, {h.instance}):
                a = shlex.quote(peer.address)
                rules = [
                    f"INPUT -s {a} -m comment --comment {tag} -j DROP",
                    f"OUTPUT -d {a} -m comment --comment {tag} -j DROP",
                ]
                f.inject += [(h, f"iptables -w -I {r}") for r in rules]
                f.rollback += [
                    (h, f"while iptables -w -D {r} 2>/dev/null; do :; done") for r in rules
                ]
    elif kind == "latency":
        src, _, dst = p.link.partition("->")
        to = [h for h in hosts.values() if h.service == dst.strip()]
        if not to:
            raise InfrastructureError(f"latency on {p.link}: no hosts for '{dst.strip()}'")
        link = next((k for k in topo.links if k.name == f"{src.strip()}->{dst.strip()}"), None)
        if link is not None and "via" in link.model_fields_set:
            _relayed(f, p, [h for h in hosts.values() if h.service == src.strip()], to, relays)
            return f
        delay = f"delay {round(p.latency * 1000)}ms" + (
            f" {round(p.jitter * 1000)}ms" if p.jitter else ""
        )
        for h in hosts.values():
            if h.service != src.strip():
                continue
            dev = f"dev=$(ip -o -4 route get {shlex.quote(to[0].address)} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p')"
            cmds = [
                f'tc qdisc add dev "$dev" root handle {QDISC}: prio',
                f'tc qdisc add dev "$dev" parent {QDISC}:3 handle {QDISC}3: netem {delay}',
            ] + [
                f'tc filter add dev "$dev" parent {QDISC}: protocol ip prio 3 u32 match ip dst '
                f"{shlex.quote(t.address)}/32 flowid {QDISC}:3"
                for t in to
            ]
            f.inject.append((h, f"{dev} && " + " && ".join(cmds)))
            f.rollback.append(
                (
                    h,
                    f'{dev} && if tc qdisc show dev "$dev" root | grep -q "prio {QDISC}:"; '
                    f'then tc qdisc del dev "$dev" root; fi',
                )
            )
    else:  # the semantic checks refuse these before anything runs
        raise InfrastructureError(f"{kind} has no hosts-runtime form")
    return f


def _relayed(
    f: HostFault, p: Any, froms: list[Host], to: list[Host], relays: Relays | None
) -> None:
    """Latency through the harness's Toxiproxy: one proxy per `to` host, one DNAT rule per
    (from, to) pair, tagged `harness:<proxy name>`."""
    port = upstream_port(to[0].kind)
    for t in to:
        name = f"{f.name}@{t.instance}".replace(" ", "_")
        listen = local_address_toward(froms[0].address) if relays is not None and froms else ""
        relay = (
            relays.open(name, listen, f"{t.address}:{port}", p.latency, p.jitter)
            if relays is not None
            else "RELAY"
        )
        f.relays.append(name)
        for h in froms:
            rule = dnat(t, port, relay, f"harness:{name}")
            f.inject.append((h, f"iptables -w -t nat -I {rule}"))
            f.rollback.append((h, f"while iptables -w -t nat -D {rule} 2>/dev/null; do :; done"))
    f.note = f"through the harness's Toxiproxy, {round(p.latency * 1000)} ms"


def recover(detail: dict[str, Any], shell: Shell) -> list[str]:
    """Undo a journaled host fault from its `detail` alone (harness gc)."""
    f = HostFault("", "")
    for row in detail.get("rollback", []):
        url = row["url"]
        h = Host(row["instance"], "", "", url, url, False)
        f.rollback.append((h, row["command"]))
    failed = f.undo(shell)
    done = [f"{h.instance}: {c}" for h, c in f.rollback]
    return done + [f"FAILED {x}" for x in failed]
