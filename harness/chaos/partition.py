"""`partition`: cut instances off from peers with iptables DROP rules in their own network
namespace, in a dedicated chain (`HARNESS-PART`, jumped to from INPUT and OUTPUT, every rule
tagged `harness:<run_id>`) so undoing it is a flush and a delete, from here or from `recover()`.

The containers lack NET_ADMIN, so the rules are not exec'd: the host's iptables runs in the
container's namespace through `nsenter` (fast), or, when that is impossible (not root, no
nsenter, a remote engine), a short-lived helper from the container's own image joins it.

`peers: all` means everyone but the observers: the gateway (the harness, its exporters) and
Prometheus keep seeing the node, the other LBs' health checks and VRRP adverts do not.
A peer reached through a Toxiproxy link (`web->mysql`) is cut on the link's proxy port too:
"web-1 cannot reach mysql" must not depend on whether a link is declared."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from docker.errors import APIError, ContainerError, NotFound
from docker.models.containers import Container

from harness.chaos.base import BaseFault, FaultContext, undo_each
from harness.chaos.container import container_detail, recover_each
from harness.chaos.targets import describe, resolve
from harness.errors import InfrastructureError
from harness.plan.model import RunPlan
from harness.roles import Role, kinds_of
from harness.runtime import labels
from harness.runtime.docker import client
from harness.spec.models import PartitionFault

CHAIN = "HARNESS-PART"


class NotRunning(InfrastructureError):
    """No namespace to change: nothing to partition, and nothing left to undo."""


OBSERVERS = kinds_of(Role.OBSERVER)  # kinds that keep seeing a partitioned node
PROXIES = kinds_of(Role.PROXY)
IPT = "iptables -w"


def _link_endpoints(plan: RunPlan, src_service: str, dst_service: str) -> list[str]:
    """`ip:port` of the proxy carrying the link `src_service->dst_service`, if declared."""
    link = plan.toxiproxy.get(f"{src_service}->{dst_service}")
    proxies = [c for c in plan.containers if c.kind in PROXIES]
    if link is None or not proxies:
        return []
    config = json.loads(proxies[0].files.get("/etc/toxiproxy.json", "[]"))
    ports = [p["listen"].rsplit(":", 1)[1] for p in config if p["name"] == link[1]]
    return [f"{proxies[0].ip}:{port}" for port in ports]


def drops(plan: RunPlan, instance: str, peers: list[str] | str) -> list[str]:
    """What `instance` can no longer reach nor hear from: `ip` or `ip:port` entries."""
    me = plan.container(instance)
    if peers == "all":
        others = [c for c in plan.containers if c.instance != instance and c.kind not in OBSERVERS]
        ips = [c.ip for c in others] + [v for s, v in plan.vips.items() if s != me.service]
        return sorted(set(ips) - {me.ip, plan.gateway}, key=_ipkey)
    out: list[str] = []
    for peer in peers:
        members = plan.instances(peer) or [c for c in plan.containers if c.instance == peer]
        if not members:
            raise InfrastructureError(f"partition: unknown peer '{peer}'")
        service = members[0].service
        out += [c.ip for c in members]
        if len(members) == len(plan.instances(service)):  # the whole service, not one replica
            out += [plan.vips[service]] if service in plan.vips and service != me.service else []
            out += _link_endpoints(plan, me.service, service)
    return sorted(set(out) - {me.ip, plan.gateway}, key=_ipkey)


def _ipkey(entry: str) -> tuple[int, ...]:
    ip, _, port = entry.partition(":")
    return (*map(int, ip.split(".")), int(port or 0))


def add_script(entries: list[str], comment: str) -> str:
    tag = f"-m comment --comment {comment}"
    lines = ["set -e", f"{IPT} -N {CHAIN} 2>/dev/null || {IPT} -F {CHAIN}"]
    for entry in entries:
        ip, _, port = entry.partition(":")
        out = f"-d {ip} -p tcp --dport {port}" if port else f"-d {ip}"
        inn = f"-s {ip} -p tcp --sport {port}" if port else f"-s {ip}"
        lines += [f"{IPT} -A {CHAIN} {m} {tag} -j DROP" for m in (out, inn)]
    lines += [f"{IPT} -I {hook} 1 {tag} -j {CHAIN}" for hook in ("INPUT", "OUTPUT")]
    return "\n".join(lines)


# Deletes every jump to the chain whatever its tag (also a stale one), then the chain itself.
REMOVE_SCRIPT = (
    "set +e\n"
    f"for hook in INPUT OUTPUT; do {IPT} -S $hook | grep -e '-j {CHAIN}' | sed 's/^-A/-D/' |"
    f" while read -r rule; do eval {IPT} $rule; done; done\n"
    f"{IPT} -F {CHAIN} 2>/dev/null; {IPT} -X {CHAIN} 2>/dev/null; true"
)


def in_netns(c: Container, script: str) -> str:
    """Run a shell script in the container's network namespace; returns its output."""
    c.reload()
    pid = int(c.attrs["State"].get("Pid") or 0)
    if pid <= 0:
        raise NotRunning(f"{c.name} is not running: no network namespace to change")
    if _host_can_enter(pid, c.id or ""):
        res = subprocess.run(
            ["nsenter", "-t", str(pid), "-n", "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if res.returncode != 0:
            raise InfrastructureError(f"iptables in {c.name} failed: {res.stderr.strip()}")
        return res.stdout
    lbl = c.labels
    try:
        out = client().containers.run(
            image=c.image.id if c.image else c.attrs["Image"],
            entrypoint=["/bin/sh", "-c", script],
            network_mode=f"container:{c.id}",
            cap_add=["NET_ADMIN"],
            remove=True,
            labels=labels.for_run(
                lbl.get(labels.RUN, "unknown"), lbl.get(labels.TOPOLOGY, "unknown")
            ),
        )
    except (ContainerError, APIError) as exc:
        raise InfrastructureError(f"iptables helper for {c.name} failed: {exc}") from None
    return out.decode(errors="replace") if isinstance(out, bytes) else ""


def _host_can_enter(pid: int, container_id: str) -> bool:
    """Root, both tools, and the pid really is that container's (not a remote engine's)."""
    if os.geteuid() != 0 or not (shutil.which("nsenter") and shutil.which("iptables")):
        return False
    try:
        with open(f"/proc/{pid}/cgroup") as fh:
            return bool(container_id) and container_id in fh.read()
    except OSError:
        return False


class Fault(BaseFault):
    kind = "partition"

    def __init__(self, params: PartitionFault, ctx: FaultContext) -> None:
        self.params, self.ctx = params, ctx
        self.instances = resolve(params.target, ctx)
        self.target = describe(self.instances)
        peers = params.peers if params.peers == "all" else list(params.peers)
        self.detail: dict[str, Any] = {
            "instances": self.instances,
            "containers": container_detail(ctx, self.instances),
            "peers": peers,
            "chain": CHAIN,
            "comment": f"harness:{ctx.run_id}",
            "drop": {i: drops(ctx.plan, i, peers) for i in self.instances},
            "kept": [ctx.plan.gateway] + [c.ip for c in ctx.plan.containers if c.kind in OBSERVERS],
        }
        self.tried: list[str] = []

    def inject(self) -> None:
        for inst in self.instances:
            self.tried.append(inst)
            in_netns(
                self.ctx.containers[inst],
                add_script(self.detail["drop"][inst], self.detail["comment"]),
            )

    def rollback(self) -> None:
        undo_each(
            self.kind,
            self.tried,
            lambda inst: in_netns(self.ctx.containers[inst], REMOVE_SCRIPT),
            gone=(NotFound, NotRunning),  # the container or its namespace, and the rules with it
            failed=(APIError, InfrastructureError),
        )


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    def act(c: Container) -> str:
        in_netns(c, REMOVE_SCRIPT)
        return f"removed chain {CHAIN} in"

    return recover_each(
        kind,
        detail,
        act,
        f"remove {CHAIN}",
        gone=(NotFound, NotRunning),
        gone_means="is gone or stopped: no rules left",
    )
