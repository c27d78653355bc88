"""Issue 12, ask 2: the database failover's one pluggable step is the promotion. Keepalived's
notify hook runs /usr/local/bin/db-promote.sh with sh on the instance that takes the VIP over,
so a topology swaps in its own through `config:`; the shipped one stays otherwise."""

from __future__ import annotations

from pathlib import Path

from harness.plan.build import make_plan
from harness.spec.loader import load_topology

REPO = Path(__file__).resolve().parents[3]
PROMOTE = "/usr/local/bin/db-promote.sh"

TOPO = """\
version: 1
name: promote
services:
  lb: {kind: haproxy, backends: web}
  web: {kind: web}
  redis: {kind: redis}
  mysql:
    kind: mariadb
    replicas: 2
    keepalived: {vip: auto}
    config: {/usr/local/bin/db-promote.sh: promote.sh}
load: {users: 5, spawn_rate: 5, duration: 20s}
assertions:
  - no_lost_writes: {}
"""


def test_a_topology_brings_its_own_promotion(tmp_path: Path) -> None:
    (tmp_path / "promote.sh").write_text("#!/bin/sh\nmysql -e 'SET GLOBAL read_only=OFF'\n")
    (tmp_path / "t.yaml").write_text(TOPO)
    topo = load_topology(tmp_path / "t.yaml")
    p = make_plan(topo, "r1", "10.213.9.0/24", [], base_dir=tmp_path)
    for inst in ("mysql-1", "mysql-2"):
        assert "read_only=OFF" in p.container(inst).files[PROMOTE]
        assert "keepalived.conf" in " ".join(p.container(inst).files)


def test_the_notify_hook_runs_the_promotion_with_sh_so_a_config_file_needs_no_exec_bit() -> None:
    notify = (REPO / "images/data/keepalived-notify.sh").read_text()
    assert f"[ -f {PROMOTE} ]" in notify and f"sh {PROMOTE}" in notify
