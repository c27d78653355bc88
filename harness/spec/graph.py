"""The services a run starts and the order it starts them in, worked out from the topology alone.

Every run also has the services the harness adds (Prometheus; Toxiproxy when `links:` exist).
A service waits for what it `depends_on` and for what it needs implicitly: an LB for its
backends, a web/php-fpm node for the database and Redis, the Toxiproxy for the services its
links lead to, and a link's `from` service for the Toxiproxy. Validation rejects any cycle in
that graph, so `levels` (the start order) always exists for a valid topology. Nothing here
recurses: a 1,500-service chain is as easy as a three-service one.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.roles import Role, kinds_of, kinds_where, only
from harness.spec.models import (
    PrometheusService,
    Topology,
    ToxiproxyService,
)

# The services the harness adds are named after their kinds: the observer and the proxy.
PROMETHEUS = only(Role.OBSERVER)
TOXIPROXY = only(Role.PROXY)
AUTO_SERVICES = (PROMETHEUS, TOXIPROXY)  # names the harness uses for the services it adds
LB_KINDS = kinds_of(Role.LOAD_BALANCER)
APP_KINDS = kinds_of(Role.WEB, Role.APP_POOL)
DATA_KINDS = kinds_where(app_data=True)


def with_auto_services(topo: Topology) -> Topology:
    """Add the services every run has implicitly: Prometheus, and Toxiproxy when links exist."""
    services = dict(topo.services)
    if not any(s.kind == PROMETHEUS for s in services.values()):
        services[PROMETHEUS] = PrometheusService.model_validate({"kind": PROMETHEUS})
    if topo.links and not any(s.kind == TOXIPROXY for s in services.values()):
        services[TOXIPROXY] = ToxiproxyService.model_validate({"kind": TOXIPROXY})
    return topo.model_copy(update={"services": services})


@dataclass(frozen=True)
class Edge:
    """`service` waits for `needs`; `why` says so in words; `index` is the depends_on entry."""

    service: str
    needs: str
    why: str
    index: int | None = None  # the position in `depends_on` when the edge is declared there


def edges(topo: Topology, name: str) -> list[Edge]:
    """What `name` waits for (known services only, never itself), declared edges first."""
    services = topo.services
    svc = services[name]
    out: list[Edge] = []
    seen: set[str] = set()

    def add(needs: str, why: str, index: int | None = None) -> None:
        if needs in services and needs != name and needs not in seen:
            seen.add(needs)
            out.append(Edge(name, needs, why, index))

    for i, dep in enumerate(svc.depends_on):
        add(dep, f"{name} depends_on {dep}", i)
    backends = getattr(svc, "backends", None)
    if svc.kind in LB_KINDS and isinstance(backends, str):
        add(backends, f"{name} balances {backends}")
    if svc.kind in APP_KINDS:
        for n, s in services.items():
            if s.kind in DATA_KINDS:
                add(n, f"{name} uses {n}")
    if svc.kind == TOXIPROXY:
        for link in topo.links:
            if link.from_ != link.to:  # a self-link is an error of its own, not a cycle
                add(link.to, f"{name} proxies to {link.to}")
    if any(link.from_ == name and link.to != name for link in topo.links):
        for n, s in services.items():
            if s.kind == TOXIPROXY:
                add(n, f"{name} reaches {link_targets(topo, name)} through {n}")
    return out


def link_targets(topo: Topology, name: str) -> str:
    return ", ".join(sorted({lk.to for lk in topo.links if lk.from_ == name and lk.to != name}))


def implicit_deps(topo: Topology, name: str) -> list[str]:
    """Every service `name` waits for, sorted."""
    return sorted(e.needs for e in edges(topo, name))


def find_cycle(topo: Topology) -> list[Edge] | None:
    """One cycle of the dependency graph as its edges in order, or None. Iterative DFS."""
    graph = {n: edges(topo, n) for n in topo.services}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in topo.services:
        if root in state:
            continue
        path: list[Edge] = []  # the edges from the root to the node on top of `stack`
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            if i == len(graph[node]):
                stack.pop()
                state[node] = 2
                if path:
                    path.pop()
                continue
            stack[-1] = (node, i + 1)
            edge = graph[node][i]
            nxt = edge.needs
            if state.get(nxt) == 1:
                start = next(k for k, e in enumerate(path) if e.service == nxt)
                return path[start:] + [edge]
            if nxt not in state:
                state[nxt] = 1
                path.append(edge)
                stack.append((nxt, 0))
    return None


def levels(topo: Topology) -> list[list[str]]:
    """Services grouped so each depends only on earlier groups (validation forbids cycles)."""
    remaining = {n: set(implicit_deps(topo, n)) for n in topo.services}
    waiting: dict[str, set[str]] = {n: set() for n in topo.services}
    for n, deps in remaining.items():
        for d in deps:
            waiting[d].add(n)
    out: list[list[str]] = []
    ready = sorted(n for n, deps in remaining.items() if not deps)
    placed = 0
    while ready:
        out.append(ready)
        placed += len(ready)
        nxt: set[str] = set()
        for n in ready:
            for w in waiting[n]:
                remaining[w].discard(n)
                if not remaining[w]:
                    nxt.add(w)
        ready = sorted(nxt)
    if placed != len(remaining):  # unreachable after validation; keep a clear message anyway
        stuck = sorted(n for n, deps in remaining.items() if deps)
        raise ValueError(f"dependency cycle among {stuck}")
    return out
