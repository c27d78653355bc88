"""What a kind module declares about itself (`DESCRIPTOR`), for the phases that run beside and
after the load: chaos (which process the VIP's tracking script follows), the watchers (which log
lines mean a backend went down or up, or a node took the VIP; where an LB's upstreams are), the
baseline (how to ask Prometheus whether an LB sees its backends UP), the verdict (the worst case
its config allows) and the write check (how to read the stored orders back). The role and the
facts validation needs live in harness/roles.py (the spec may not import kinds)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.plan.model import ContainerPlan, RunPlan, ScrapeTarget


@dataclass(frozen=True)
class LogLines:
    """Regexes over an LB container's log lines (the message after Docker's timestamp)."""

    backend: tuple[re.Pattern[str], ...] = ()  # groups: proxy, server, UP|DOWN
    disabled: tuple[re.Pattern[str], ...] = ()  # groups: host, port: a passive ejection
    started: tuple[re.Pattern[str], ...] = ()  # the LB process started: every server UP again
    vip: tuple[re.Pattern[str], ...] = ()  # groups: VRRP instance, state (MASTER takes the VIP)

    def __add__(self, other: LogLines) -> LogLines:
        def both(a: tuple[re.Pattern[str], ...], b: tuple[re.Pattern[str], ...]) -> Any:
            return tuple(dict.fromkeys(a + b))

        return LogLines(
            both(self.backend, other.backend),
            both(self.disabled, other.disabled),
            both(self.started, other.started),
            both(self.vip, other.vip),
        )


@dataclass(frozen=True)
class Exporter:
    job: str  # the Prometheus job its metrics are scraped under
    port: int

    def target(self, ip: str, instance: str) -> ScrapeTarget:
        """What Prometheus scrapes for one instance of the kind."""
        return ScrapeTarget(self.job, f"{ip}:{self.port}", instance)


@dataclass(frozen=True)
class Drain:
    """How a deploy takes one backend out of this LB and puts it back (harness/chaos/lbctl.py).
    `how`: "runtime_api" (HAProxy's admin socket: `state drain`, wait for sessions to end,
    `maint`, `ready`, `set weight`) or "reload" (Nginx: `down`/`weight=` on the upstream's server
    lines and a graceful reload, then a wait for the old workers)."""

    how: str
    config: str  # the rendered config file whose server lines name the backends
    # a server line; group 1: the LB's name for a backend (runtime_api) or its IP (reload)
    server: re.Pattern[str]
    top_weight: int  # the highest weight the LB takes


# (plan, LB container) → (upstream address → backend instance, backend → seconds until retried)
Upstreams = Callable[[RunPlan, ContainerPlan], tuple[dict[str, str], dict[str, float]]]


@dataclass(frozen=True)
class Descriptor:
    image: str | None  # the built-in image (images/<name>), None: the user brings one
    ports: Mapping[str, int] = field(default_factory=dict)
    exporter: Exporter | None = None
    log: LogLines | None = None  # set: the watchers follow its log (load balancers)
    tracks: str | None = None  # the process a VIP's tracking script follows on this kind
    # The worst case the service's config allows for ejecting a dead backend: (seconds, how).
    ejection: Callable[[Any], tuple[float, str]] | None = None
    # The same when it depends on other services (a gateway's on its registry's lease TTL):
    # (topology, svc) → (seconds, how); used instead of `ejection`.
    ejection_in: Callable[[Any, Any], tuple[float, str]] | None = None
    upstreams: Upstreams | None = None  # an LB whose log names upstreams by address
    # PromQL selector of one LB instance's per-server UP series (0/1 each): (run id, instance).
    backends_up: Callable[[str, str], str] | None = None
    drain: Drain | None = None  # set: a deploy can take a backend out of it (load balancers)
    # The command that prints the ids of the stored orders, one per line: (secrets) → argv.
    read_orders: Callable[[Mapping[str, str]], list[str]] | None = None
    # The same on an existing machine (runtime: hosts), a shell command with the SSH user's
    # own credentials (`control.read_orders` overrides it).
    host_read_orders: str | None = None
