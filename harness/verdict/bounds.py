"""The worst case a topology's own configuration allows, for `max: auto`: what the harness
measures is reported against what the config promises."""

from __future__ import annotations

from harness import kinds
from harness.kinds import keepalived
from harness.roles import Role
from harness.spec.models import Topology

# Allowance for Keepalived's tracking script (interval 1 s x fall 1: Keepalived 2.2 takes whole
# seconds only) when the LB process dies.
TRACK_ALLOWANCE = 1.0


def ejection(topo: Topology, backend_service: str) -> tuple[str, float | None, str]:
    """(LB kind, bound in seconds, how it was derived) for the LB in front of `backend_service`."""
    lbs = kinds.by_role(Role.LOAD_BALANCER)
    for svc in topo.services.values():
        kind = lbs.get(svc.kind)
        in_front = kind is not None and getattr(svc, "backends", None) == backend_service
        if in_front and kind is not None and kind.ejection_in:
            bound, how = kind.ejection_in(topo, svc)  # a gateway: from its registry's lease TTL
            return svc.kind, bound, how
        if kind is not None and kind.ejection and getattr(svc, "backends", None) == backend_service:
            bound, how = kind.ejection(svc)
            return svc.kind, bound, how
    return "", None, ""


def failover(topo: Topology, lb_service: str) -> tuple[float | None, str]:
    svc = topo.services.get(lb_service)
    ka = getattr(svc, "keepalived", None)
    if ka is None:
        return None, ""
    b = keepalived.failover_bound(ka)
    return (
        b + TRACK_ALLOWANCE,
        f"3 x advert_int {ka.advert_int:g}s + skew + {TRACK_ALLOWANCE:g}s tracking",
    )
