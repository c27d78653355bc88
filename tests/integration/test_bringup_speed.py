"""Bring-up's cuts on real containers (issue 15): Prometheus starts before everything else, the
first Keepalived replica takes the VIP as soon as its tracking script passes (not 3-4 advert
intervals later), vip_holder reads the LB's own namespace instead of exec'ing into it and
agrees with `ip addr`, and the up phase journals where its time went. One bring-up of
topologies/ha.yaml, torn down by its run label."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from harness.runner import Run
from harness.runtime import probe
from harness.runtime.stack import teardown

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def started(container: Any) -> float:
    container.reload()
    stamp = container.attrs["State"]["StartedAt"][:26].rstrip("Z")
    return datetime.fromisoformat(stamp + "+00:00").timestamp()


def master_at(container: Any) -> float | None:
    """Docker's timestamp of Keepalived's first `Entering MASTER STATE` line."""
    for line in container.logs(timestamps=True).decode(errors="replace").splitlines():
        if "Entering MASTER STATE" in line:
            stamp = line.split(" ", 1)[0][:26].rstrip("Z")
            return datetime.fromisoformat(stamp + "+00:00").timestamp()
    return None


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Any:
    run = Run(
        ROOT / "topologies" / "ha.yaml",
        runs_dir=tmp_path_factory.mktemp("runs"),
        keep=True,
        say=lambda m: None,
        judged=False,
    )
    try:
        res = run.bring_up()
        assert res.exit_code == 0, res.error
        yield run
    finally:
        teardown(run.run_id)


def test_prometheus_starts_first_and_up_journals_its_timings(up: Any) -> None:
    ph = next(p for p in up.journal.data["phases"] if p["name"] == "up")
    timings = ph["timings"]
    names = [c.instance for c in up.plan.containers]
    assert {"network", "create (all)"} <= set(timings)
    assert all(f"start {n}" in timings and f"ready {n}" in timings for n in names)
    assert sum(1 for k in timings if k.startswith("level ")) == len(up.plan.levels)
    starts = {n: started(up.stack.containers[n]) for n in names}
    assert min(starts, key=lambda n: starts[n]) == "prometheus", starts


def test_the_first_lb_takes_the_vip_at_once(up: Any) -> None:
    lb1 = up.stack.containers["lb-1"]
    took = master_at(lb1)
    assert took is not None
    # its tracking script passes within ~1 s; waiting for a master would take
    # 3 x advert_int (1 s) + skew before it could take the VIP
    assert took - started(lb1) < 2.5, took - started(lb1)
    assert master_at(up.stack.containers["lb-2"]) is None  # lb-2 never held it


def test_vip_holder_reads_the_namespace_and_agrees_with_ip_addr(up: Any) -> None:
    vip = up.plan.vips["lb"]
    for name in ("lb-1", "lb-2"):
        c = up.stack.containers[name]
        c.reload()
        local = probe.local_addresses(c)
        assert local is not None  # the engine is on this machine: no exec needed
        code, out = c.exec_run(["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        assert code == 0
        assert (vip in local) == (f" {vip}/" in out.decode()), (name, local, out)
    assert probe.vip_holder(up.stack.containers, up.plan, "lb") == "lb-1"
    up.stack.containers["lb-1"].pause()
    try:  # a paused holder answers nobody: it holds nothing, whatever its namespace says
        assert not probe.holds(up.stack.containers["lb-1"], vip)
    finally:
        up.stack.containers["lb-1"].unpause()
