"""Issue 13, ask 5-6: the two-level LB's keys (`kind: registry`, `kind: gateway`, the
`heartbeat_freeze` fault) in the schema, and nonsense refused before anything starts, one line
each, `file:line: field: problem (fix)`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.spec.loader import load_topology
from harness.spec.schema import json_schema

REPO = Path(__file__).resolve().parents[3]
TWO_LEVEL = (REPO / "topologies" / "two-level.yaml").read_text()
LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<field>\S+): (?P<msg>.+) \((?P<fix>.+)\)$")


def problems(tmp_path: Path, text: str) -> list[tuple[int, str, str]]:
    """(line, field, whole message) of every problem, each checked to be one well-formed line."""
    path = tmp_path / "t.yaml"
    path.write_text(text.replace("../locustfiles/", str(REPO / "locustfiles") + "/"))
    with pytest.raises(SpecError) as info:
        load_topology(path)
    out = []
    for p in info.value.problems:
        m = LINE.match(p)
        assert m and m["file"] == str(path) and "\n" not in p, p
        out.append((int(m["line"]), m["field"], p))
    return out


def test_the_shipped_two_level_topology_validates(tmp_path: Path) -> None:
    topo = load_topology(REPO / "topologies" / "two-level.yaml")
    gw = topo.services["gateway"]
    assert (gw.kind, gw.backends, gw.replicas) == ("gateway", "web", 2)
    assert topo.services["lb"].backends == "gateway"  # type: ignore[union-attr]
    reg = topo.services["registry"]
    assert (reg.lease_ttl, reg.heartbeat) == (3.0, 1.0)  # type: ignore[union-attr]
    assert topo.chaos[0].fault.kind == "heartbeat_freeze"


def test_every_new_key_is_in_the_schema() -> None:
    schema = json.dumps(json_schema())
    for key in ("lease_ttl", "heartbeat", "heartbeat_freeze", '"gateway"', '"registry"'):
        assert key in schema, key


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "says"),
    [
        (
            "heartbeat: 1s}",
            "heartbeat: 3s}",
            21,
            "services.registry",
            "heartbeat: 3s is not shorter than lease_ttl: 3s",
        ),
        ("lease_ttl: 3s", "lease_ttl: 1s", 21, "services.registry.lease_ttl", "at least 2"),
        (
            "{kind: registry,",
            "{kind: registry, replicas: 3,",
            21,
            "services.registry",
            "one etcd member",
        ),
        (
            "  registry: {kind: registry, lease_ttl: 3s, heartbeat: 1s}\n",
            "",
            17,
            "services.gateway.kind",
            "there is none (add e.g. registry: {kind: registry})",
        ),
        (
            "    backends: web\n",
            "    backends: web\n    registry: redis\n",
            20,
            "services.gateway.registry",
            "'redis' is not a registry service",
        ),
        (
            "    backends: web\n",
            "    backends: mysql\n",
            19,
            "services.gateway.backends",
            "'mysql' is mariadb (name a web service, e.g. backends: web)",
        ),
        (
            "heartbeat_freeze: web-2",
            "heartbeat_freeze: redis",
            27,
            "chaos[0].fault.heartbeat_freeze.target",
            "'redis' sends no heartbeats",
        ),
        (
            "balance: roundrobin",
            "balance: source",
            None,
            "services.gateway.balance",
            "",
        ),
    ],
)
def test_nonsense_is_refused_on_one_line_with_its_fix(
    tmp_path: Path, old: str, new: str, line: int | None, field: str, says: str
) -> None:
    text = TWO_LEVEL
    if old == "balance: roundrobin":  # not in the file: add it to the gateway
        text = text.replace("    backends: web\n", "    backends: web\n    balance: source\n")
    else:
        assert old in text
        text = text.replace(old, new, 1)
    found = problems(tmp_path, text)
    hits = [p for ln, f, p in found if f == field and (line is None or ln == line)]
    assert hits, found
    assert says in hits[0]


def test_a_web_service_with_its_own_image_cannot_register(tmp_path: Path) -> None:
    text = TWO_LEVEL.replace(
        "web: {kind: web, replicas: 3, sessions: redis}",
        "web: {kind: web, replicas: 3, sessions: redis, image: 'myorg/web:1'}",
    )
    [(line, field, msg)] = [p for p in problems(tmp_path, text) if "register" in p[2]]
    assert (line, field) == (19, "services.gateway.backends") and "runs its own image" in msg
