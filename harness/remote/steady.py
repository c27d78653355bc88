"""The docker runtime's recovery watcher (harness/watch/recovery.py) on `runtime: hosts`: it
decides "steady again" from the same four things, read from the machines over SSH by
HostWatchers (harness/remote/watch.py):

- every LB reports its backends UP: the LB's log on its host;
- every VIP on its intended master: the `ip addr` loop on each LB host; the intended master is
  the host that held the VIP when the load started (the user's Keepalived priorities, not the
  file's order), or the next one when a fault took it down on purpose;
- every node runs: each host's service (`systemctl is-active UNIT`, or `control.status`);
- no client failure for `quiet` s: the run's Locust processes, as on docker.

A fault on a host is undone when its window ends (or, for a kill, when the load ends), so the
watcher's `hold`/`release` and `expected_down` mean what they mean on docker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.remote.targets import Host
from harness.spec.models import Topology
from harness.watch import recovery_setup
from harness.watch.recovery import RecoveryWatcher


class HostLayout:
    """The machines as the recovery watcher's plan: a service's hosts in file order, but the
    host holding a VIP at the start first (`first`: service -> instance)."""

    def __init__(self, hosts: Mapping[str, Host], first: Mapping[str, str | None]) -> None:
        self.hosts, self.first = dict(hosts), dict(first)

    def instances(self, service: str) -> Sequence[Host]:
        mine = [h for h in self.hosts.values() if h.service == service]
        lead = self.first.get(service)
        return sorted(mine, key=lambda h: h.instance != lead)  # stable: file order otherwise

    def container(self, instance: str) -> Host:
        if instance not in self.hosts:
            raise StopIteration(instance)  # RunPlan.container's "no such instance"
        return self.hosts[instance]


def recovery_watcher(
    topo: Topology,
    hosts: Mapping[str, Host],
    watchers: Any,
    exporter: Any,
    metrics_addrs: Sequence[str],
) -> RecoveryWatcher:
    """A RecoveryWatcher over the hosts (`watchers`: the run's started HostWatchers;
    `metrics_addrs`: the run's own Locust processes, remote workers are added)."""
    layout = HostLayout(hosts, watchers.vip_holders())
    return recovery_setup.for_run(topo, layout, watchers, exporter, metrics_addrs)
