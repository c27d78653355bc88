"""The worst case a topology's own configuration allows, for `max: auto`: what the harness
measures is reported against what the config promises."""

from __future__ import annotations

from harness.kinds import haproxy, keepalived, nginx_lb
from harness.spec.models import HAProxyService, NginxLBService, Topology

# Allowance for Keepalived's tracking script (interval 1 s x fall 1: Keepalived 2.2 takes whole
# seconds only) when the LB process dies.
TRACK_ALLOWANCE = 1.0


def ejection(topo: Topology, backend_service: str) -> tuple[str, float | None, str]:
    """(LB kind, bound in seconds, how it was derived) for the LB in front of `backend_service`."""
    for svc in topo.services.values():
        if isinstance(svc, HAProxyService) and svc.backends == backend_service:
            c = svc.check
            return (
                "haproxy",
                haproxy.ejection_bound(svc),
                f"fall {c.fall} x (inter {c.interval:g}s + timeout {c.timeout:g}s)",
            )
        if isinstance(svc, NginxLBService) and svc.backends == backend_service:
            return (
                "nginx-lb",
                nginx_lb.ejection_bound(svc),
                (f"passive: max_fails {svc.max_fails} x connect timeout {svc.timeout_connect:g}s"),
            )
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
