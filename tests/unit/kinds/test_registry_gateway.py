"""Issue 13, ask 5: what the registry and gateway kinds plan. Web nodes a gateway discovers get
the registration sidecar's settings (and only those); each gateway is told where the registry
is, which prefix to follow and how to add servers; the gateway's HAProxy starts with no server;
`max: auto` for the gateway's ejection comes from the registry's lease TTL."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import kinds
from harness.kinds import gateway, registry
from harness.plan.build import make_plan
from harness.spec.loader import load_topology
from harness.verdict import bounds

REPO = Path(__file__).resolve().parents[3]
SUBNET = "10.213.9.0/24"


@pytest.fixture
def plan():  # type: ignore[no-untyped-def]
    topo = load_topology(REPO / "topologies" / "two-level.yaml")
    return topo, make_plan(topo, "r1", SUBNET, [])


def test_every_discovered_web_node_registers_under_its_own_key(plan) -> None:  # type: ignore[no-untyped-def]
    _, p = plan
    reg = p.container("registry")
    for c in p.instances("web"):
        env = c.env
        assert env["HARNESS_REGISTRY"] == f"http://{reg.ip}:2379"
        assert env["HARNESS_REGISTRY_KEY"] == f"/harness/services/web/{c.instance}"
        assert env["HARNESS_REGISTRY_VALUE"] == f"{c.ip}:80"
        assert (env["HARNESS_REGISTRY_TTL"], env["HARNESS_REGISTRY_HEARTBEAT"]) == ("3", "1")


def test_web_nodes_no_gateway_discovers_do_not_register() -> None:
    topo = load_topology(REPO / "topologies" / "ha.yaml")
    p = make_plan(topo, "r1", SUBNET, [])
    assert not any(k.startswith("HARNESS_REGISTRY") for c in p.instances("web") for k in c.env)


def test_each_gateway_follows_the_web_prefix_in_the_registry(plan) -> None:  # type: ignore[no-untyped-def]
    _, p = plan
    reg = p.container("registry")
    assert reg.command == ["/usr/local/bin/registry-start.sh"]
    assert reg.wait.target == f"http://{reg.ip}:2379/health"
    gws = p.instances("gateway")
    assert [g.instance for g in gws] == ["gateway-1", "gateway-2"]
    for g in gws:
        assert g.image == "registry" and g.command == ["/usr/local/bin/gateway-start.sh"]
        assert g.env["GATEWAY_REGISTRY"] == f"{reg.ip}:2379"
        assert g.env["GATEWAY_PREFIX"] == "/harness/services/web/"
        # `add server` ignores default-server: the check settings travel with each server
        assert g.env["GATEWAY_SERVER_ARGS"] == "check inter 500ms fall 2 rise 2"
        cfg = g.files["/etc/haproxy/haproxy.cfg"]
        assert "stats socket /run/haproxy/admin.sock" in cfg and "level admin" in cfg
        assert "option httpchk GET /health/live" in cfg
        assert "\n    server " not in cfg  # every server comes from the registry
    # the harness scrapes each gateway's HAProxy exporter like any HAProxy's
    assert {(t.job, t.instance) for t in p.scrape if t.instance.startswith("gateway")} == {
        ("haproxy", "gateway-1"),
        ("haproxy", "gateway-2"),
    }


def test_the_edge_lb_balances_the_gateways(plan) -> None:  # type: ignore[no-untyped-def]
    _, p = plan
    cfg = p.container("lb").files["/etc/haproxy/haproxy.cfg"]
    for g in p.instances("gateway"):
        assert f"server {g.instance} {g.ip}:80" in cfg
    assert p.load_url == f"http://{p.container('lb').ip}"


def test_auto_ejection_bound_is_the_lease_ttl_plus_expiry_sweep_and_sync(plan) -> None:  # type: ignore[no-untyped-def]
    topo, _ = plan
    kind, bound, how = bounds.ejection(topo, "web")
    assert kind == "gateway"
    assert bound == 3.0 + registry.EXPIRY_SWEEP + gateway.SYNC_ALLOWANCE == 4.0
    assert "lease_ttl 3s" in how
    longer = topo.model_copy(deep=True)
    longer.services["registry"].lease_ttl = 10.0  # type: ignore[union-attr]
    assert bounds.ejection(longer, "web")[1] == 11.0


def test_the_gateway_log_lines_are_its_backend_state() -> None:
    lines = kinds.descriptor("gateway").log
    assert lines is not None
    pattern = lines.backend[0]
    m = pattern.search(
        "gateway-sync: Server app/web-2 is DOWN (deregistered: its key left the registry)"
    )
    assert m is not None and m.groups() == ("app", "web-2", "DOWN")
    # HAProxy's own line for the same act does not say "is DOWN" (only the watcher's counts)
    assert pattern.search("Server app/web-2 was DOWN and now enters maintenance.") is None
