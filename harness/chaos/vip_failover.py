"""`vip_failover`: make the node holding a service's VIP lose it, three ways that fail over
differently: `kill` (the holder vanishes; the backup notices after ~3 adverts), `stop_keepalived`
(SIGTERM: Keepalived releases the VIP and sends a priority-0 advert, the fast path; SIGKILL would
leave the address configured on a node that no longer speaks VRRP: two holders) and
`kill_lb_process` (the LB process dies, the `chk_lb` tracking script demotes the node).
`detail` records who held the VIP before, so the report shows the move."""

from __future__ import annotations

from typing import Any

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from harness.chaos import container as cf
from harness.chaos import process_kill as pk
from harness.chaos.base import FaultContext
from harness.errors import InfrastructureError
from harness.spec.models import VipFailoverFault
from harness.watch.state import vip_holder


def lb_process(kind: str) -> str:
    """The process `chk_lb` tracks on an LB of this kind."""
    return "haproxy" if kind == "haproxy" else "nginx"


def start_holder(c: Container, grace: float = 3.0) -> None:
    """Start the killed holder. Its Keepalived may refuse to start ("daemon is already
    running"): the pidfiles the SIGKILL left behind name PIDs the new container reuses. A node
    without VRRP is no restore, so when Keepalived has not shown up after `grace`, start it."""
    if cf.start_if_stopped(c) and not pk.wait_running(c, "keepalived", grace):
        pk.start_process(c, "keepalived")


class Fault:
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
                pk.start_process(c, self.process)
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
    lines = cf.recover(kind, detail, restart_stopped)
    if any("started" in line for line in lines):  # the killed holder is back: so must VRRP be
        lines += pk.recover(kind, {**detail, "process": "keepalived", "restore": True})
    return lines
