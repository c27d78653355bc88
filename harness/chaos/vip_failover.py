"""`vip_failover`: make the node holding a service's VIP lose it, three ways that fail over
differently: `kill` (the holder vanishes; the backup notices after ~3 adverts), `stop_keepalived`
(SIGTERM: Keepalived releases the VIP and sends a priority-0 advert, the fast path; SIGKILL would
leave the address configured on a node that no longer speaks VRRP: two holders) and
`kill_lb_process` (the LB process dies, the `chk_lb` tracking script demotes the node).
`detail` records who held the VIP before, so the report shows the move."""

from __future__ import annotations

import time
from typing import Any

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from harness import kinds
from harness.chaos import container as cf
from harness.chaos import process_kill as pk
from harness.chaos.base import BaseFault, FaultContext
from harness.errors import InfrastructureError
from harness.runtime.docker import client
from harness.runtime.probe import vip_holder
from harness.spec.models import VipFailoverFault


def lb_process(kind: str) -> str:
    """The process `chk_lb` tracks on an LB of this kind."""
    tracks = kinds.descriptor(kind).tracks
    if tracks is None:
        raise InfrastructureError(f"vip_failover: a {kind} node tracks no process to kill")
    return tracks


def start_holder(c: Container, grace: float = 1.0) -> bool:
    """Start the killed holder. Its Keepalived may refuse to start ("daemon is already
    running": the pidfiles the SIGKILL left behind name PIDs the new container reuses) and exits
    at once. A node without VRRP is no restore, so if none runs after `grace`, start one."""
    if not cf.start_if_stopped(c):
        return False
    time.sleep(grace)
    if not pk.wait_running(c, "keepalived", 2.0):
        pk.start_process(c, "keepalived")
    return True


class Fault(BaseFault):
    kind = "vip_failover"

    def __init__(self, params: VipFailoverFault, ctx: FaultContext) -> None:
        self.params, self.ctx = params, ctx
        holder = vip_holder(ctx.containers, ctx.plan, params.service)
        if holder is None:
            raise InfrastructureError(f"vip_failover: nobody holds the VIP of '{params.service}'")
        self.holder = holder
        self.process = {
            "kill": None,
            "stop_keepalived": "keepalived",
            "kill_lb_process": lb_process(ctx.plan.container(holder).kind),
        }[params.method]
        self.target = holder
        self.detail: dict[str, Any] = {
            "service": params.service,
            "vip": ctx.plan.vips.get(params.service),
            "method": params.method,
            "holder_before": holder,
            "containers": cf.container_detail(ctx, [holder]),
            "process": self.process,
            "restore": params.restore,
        }
        self.tried = False

    def inject(self) -> None:
        c = self.ctx.containers[self.holder]
        self.tried = True
        try:
            if self.process is None:
                c.kill(signal="SIGKILL")
            else:
                pk.signal_process(
                    c, self.process, "SIGTERM" if self.process == "keepalived" else "SIGKILL"
                )
        except APIError as exc:
            raise InfrastructureError(
                f"vip_failover on {self.holder} failed: {exc.explanation}"
            ) from None

    def rollback(self) -> None:
        if not (self.tried and self.params.restore):
            return
        c = self.ctx.containers[self.holder]
        try:
            if self.process is None:
                start_holder(c)
            else:
                pk.start_process(c, self.process, settle=pk.SETTLE)
        except NotFound:
            pass
        except APIError as exc:
            raise InfrastructureError(
                f"rollback of vip_failover on {self.holder} failed: {exc.explanation}"
            ) from None
        self.tried = False


def recover(kind: str, detail: dict[str, Any], restart_stopped: bool = False) -> list[str]:
    if detail.get("process") is not None:
        return pk.recover(kind, detail, restart_stopped)
    lines = []
    for ref in detail.get("containers", []) if restart_stopped else []:
        try:
            if start_holder(client().containers.get(ref["id"])):
                lines.append(
                    f"{kind}: started {ref['instance']} ({ref['name']}) and its Keepalived"
                )
        except NotFound:
            lines.append(f"{kind}: {ref['instance']} ({ref['name']}) is gone")
        except (APIError, InfrastructureError) as exc:
            lines.append(f"{kind}: {ref['instance']}: could not start it ({exc})")
    return lines
