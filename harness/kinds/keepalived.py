"""Keepalived beside an LB process: unicast VRRP between the replicas, a tracking script that
demotes a node whose LB process died, and a notify hook that timestamps every transition."""

from __future__ import annotations

import re

from harness.kinds.base import Context, render
from harness.kinds.descriptor import LogLines
from harness.spec.models import Keepalived

CAPS = ["NET_ADMIN", "NET_BROADCAST", "NET_RAW"]
STATE_LOG = "/var/log/harness/keepalived.log"
# `(VI_1) Entering MASTER STATE`: the node took the VIP (BACKUP, FAULT: it gave it up).
LOG = LogLines(vip=(re.compile(r"\((\S+)\) Entering (\w+) STATE"),))


def files(
    ctx: Context,
    service: str,
    ka: Keepalived,
    index: int,
    process: str,
    track_script: str | None = None,
) -> dict[str, str]:
    """`track_script` replaces `pgrep -x <process>` as the tracking script (e.g. a Redis role
    check: only the instance Sentinel made master passes it, so the VIP follows the master)."""
    peers = [ctx.ips[i] for i in ctx.instances(service)]
    me = peers[index]
    # One VRRP router id per VIP service (51, 52, ...): two VIPs never answer for each other.
    with_vip = [n for n, s in ctx.topology.services.items() if getattr(s, "keepalived", None)]
    conf = render(
        "keepalived.conf.j2",
        router_id=f"{service}-{index + 1}",
        # Not preempting, every node starts BACKUP (keepalived clears nopreempt on an initial
        # MASTER), the first with the highest priority (it wins an election among nodes started
        # together); a node coming back leaves the VIP where it is.
        state="MASTER" if index == 0 and ka.preempt else "BACKUP",
        priority=max(1, ka.priority - 10 * index),
        advert_int=int(ka.advert_int),  # VRRPv2: whole seconds (the spec checks 1-255)
        vip=ctx.vips[service],
        prefixlen=ctx.prefixlen,
        me=me,
        peers=[p for p in peers if p != me],
        preempt=ka.preempt,
        track_process=process if ka.track_process else None,
        track_script=track_script or f"/usr/bin/pgrep -x {process}",
        vrid=51 + with_vip.index(service) if service in with_vip else 51,
    )
    return {"/etc/keepalived/keepalived.conf": conf}


def failover_bound(ka: Keepalived) -> float:
    """RFC 5798: a backup declares the master dead after 3 x advert_int plus the skew time."""
    skew = (256 - ka.priority) / 256 * ka.advert_int
    return 3 * ka.advert_int + skew
