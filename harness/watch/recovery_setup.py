"""The run's recovery watcher (harness/watch/recovery.py), as a docker run and a hosts run
make it: every Locust process read, remote workers included, and the LBs in front of each
backend service known."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.spec.models import Topology
from harness.watch.recovery import Layout, RecoveryWatcher


def lbs_in_front(topo: Topology, plan: Layout) -> dict[str, list[str]]:
    """Backend service -> the instances of the LBs balancing it (`backends:`)."""
    return {
        str(backends): [c.instance for c in plan.instances(name)]
        for name, svc in topo.services.items()
        if (backends := getattr(svc, "backends", None))
    }


def metrics_urls(topo: Topology, metrics_addrs: Sequence[str]) -> list[str]:
    """Every Locust process's metrics URL: the run's own (`metrics_addrs`: the master and its
    local workers) and each of `load.master.remote_workers`, whose failures only they export."""
    remote = topo.load.master.remote_workers
    return [f"http://{a}/metrics" for a in [*metrics_addrs, *remote]]


def for_run(
    topo: Topology, plan: Layout, watchers: Any, exporter: Any, metrics_addrs: Sequence[str]
) -> RecoveryWatcher:
    """The run's watcher (`metrics_addrs`: its own Locust processes' metrics addresses)."""
    watcher = RecoveryWatcher(plan, watchers, exporter, metrics_urls(topo, metrics_addrs))
    watcher.lbs_in_front = lbs_in_front(topo, plan)
    return watcher
