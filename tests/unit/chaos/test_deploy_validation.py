"""Deploy steps and the canary assertion refuse nonsense before anything starts, one line each,
`file:line: field: problem (fix)` (issue 13, ask 6): `weight: 150%`, `batch: 0`, `drain` on a
service no LB can drain, and what only the rest of the topology can tell."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.spec.loader import load_topology
from harness.spec.schema import json_schema

LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<field>\S+): (?P<msg>.+) \((?P<fix>.+)\)$")

HEAD = """version: 1
name: t
services:
  lb: {kind: haproxy, backends: web}
  web: {kind: web, replicas: 3}
  redis: {kind: redis}
  mysql: {kind: mariadb}
load: {duration: 30s}
chaos:
"""
TAIL = """assertions:
  - error_budget: {max_error_ratio: 0}
"""


def problems(tmp_path: Path, chaos: str, assertions: str = TAIL) -> list[tuple[int, str, str]]:
    (tmp_path / "v2" / "public").mkdir(parents=True, exist_ok=True)
    (tmp_path / "v2" / "public" / "index.php").write_text("<?php\n")
    path = tmp_path / "t.yaml"
    path.write_text(HEAD + chaos + assertions)
    with pytest.raises(SpecError) as info:
        load_topology(path)
    out = []
    for p in info.value.problems:
        assert "\n" not in p
        m = LINE.match(p)
        assert m and m["file"] == str(path), f"not `file:line: field: problem (fix)`: {p!r}"
        out.append((int(m["line"]), m["field"], m["msg"] + " (" + m["fix"] + ")"))
    return out


def test_a_weight_above_all_the_traffic_is_refused(tmp_path: Path) -> None:
    [(line, field, msg)] = problems(
        tmp_path,
        "  - name: canary\n    at: 2s\n"
        "    fault: {deploy: {service: web, app: v2, strategy: canary, weight: 150%}}\n",
    )
    assert (line, field) == (12, "chaos[0].fault.deploy.weight")
    assert "150% is more than all the traffic" in msg and "weight: 10%" in msg


def test_a_weight_that_is_no_percentage_is_refused(tmp_path: Path) -> None:
    [(_, field, msg)] = problems(
        tmp_path,
        "  - {name: canary, at: 2s, fault: {deploy: {service: web, app: v2, "
        "strategy: canary, weight: 0.1}}}\n",
    )
    assert field == "chaos[0].fault.deploy.weight" and "not a percentage" in msg


def test_batch_zero_is_refused(tmp_path: Path) -> None:
    [(line, field, msg)] = problems(
        tmp_path,
        "  - name: r\n    at: 2s\n    fault: {rolling_restart: {service: web, batch: 0}}\n",
    )
    assert (line, field) == (12, "chaos[0].fault.rolling_restart.batch")
    assert "batch: 0 takes no node out" in msg and "batch: all" in msg


def test_drain_on_a_service_no_lb_can_drain_is_refused(tmp_path: Path) -> None:
    [(line, field, msg)] = problems(
        tmp_path,
        "  - name: r\n    at: 2s\n    fault:\n      rolling_restart: {service: redis, drain: true}\n",
    )
    assert field == "chaos[0].fault.rolling_restart.drain" and line == 13
    assert "'redis' (redis) is behind no haproxy or nginx-lb" in msg and "drain: false" in msg


def test_a_batch_larger_than_the_service_is_refused(tmp_path: Path) -> None:
    [(_, field, msg)] = problems(
        tmp_path, "  - {name: r, at: 2s, fault: {rolling_restart: {service: web, batch: 5}}}\n"
    )
    assert field == "chaos[0].fault.rolling_restart.batch" and "has 3 replicas" in msg


def test_a_canary_needs_a_weight_and_stable_nodes_left(tmp_path: Path) -> None:
    got = problems(
        tmp_path,
        "  - {name: c, at: 2s, fault: {deploy: {service: web, app: v2, strategy: canary, "
        "canaries: 3}}}\n",
    )
    fields = {f: m for _, f, m in got}
    assert "add e.g. weight: 10%" in fields["chaos[0].fault.deploy.weight"]
    assert "leaves no stable 'web' node" in fields["chaos[0].fault.deploy.canaries"]


def test_a_deploy_needs_an_app_directory_and_an_app_service(tmp_path: Path) -> None:
    got = problems(
        tmp_path, "  - {name: d, at: 2s, fault: {deploy: {service: mysql, app: nowhere}}}\n"
    )
    fields = {f: m for _, f, m in got}
    assert "no directory" in fields["chaos[0].fault.deploy.app"]
    assert "replaces the PHP app of a web or php-fpm" in fields["chaos[0].fault.deploy.service"]


def test_a_canary_assertion_needs_a_canary_deploy(tmp_path: Path) -> None:
    [(_, field, msg)] = problems(
        tmp_path,
        "  - {name: d, at: 2s, fault: {deploy: {service: web, app: v2}}}\n",
        "assertions:\n  - canary: {service: web}\n",
    )
    assert field == "assertions[0].canary" and "no chaos step deploys one" in msg


def test_a_valid_deploy_topology_loads(tmp_path: Path) -> None:
    (tmp_path / "v2" / "public").mkdir(parents=True)
    (tmp_path / "v2" / "public" / "index.php").write_text("<?php\n")
    path = tmp_path / "t.yaml"
    path.write_text(
        HEAD
        + "  - {name: roll, at: 2s, fault: {rolling_restart: web}}\n"
        + "  - {name: c, at: 10s, fault: {deploy: {service: web, app: v2, strategy: canary, "
        "weight: 10%}}}\n" + "assertions:\n  - canary: {service: web, max_error_increase: 0.005}\n"
    )
    topo = load_topology(path)
    assert topo.chaos[0].fault.params.drain is True
    assert topo.chaos[1].fault.params.weight == pytest.approx(0.1)


def test_every_deploy_key_is_in_the_schema() -> None:
    defs = json_schema()["$defs"]
    assert {"service", "batch", "drain", "drain_timeout"} <= set(
        defs["RollingRestartFault"]["properties"]
    )
    assert {"app", "strategy", "weight", "canaries"} <= set(defs["DeployFault"]["properties"])
    assert {"service", "max_error_increase", "quantile", "max_latency_ratio"} <= set(
        defs["CanaryCheck"]["properties"]
    )


def test_a_deploy_takes_an_app_or_an_image_not_both(tmp_path: Path) -> None:
    [(line, field, msg)] = problems(
        tmp_path,
        "  - name: deploy\n    at: 2s\n"
        "    fault: {deploy: {service: web, app: v2, image: 'shop:v2'}}\n",
    )
    assert line == 12 and field.startswith("chaos[0].fault.deploy")
    assert "exactly one new version" in msg and "image: NAME" in msg


def test_a_deploy_image_not_on_this_machine_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import docker
    from docker.errors import ImageNotFound

    class Images:
        @staticmethod
        def get(name: str) -> None:
            raise ImageNotFound(f"No such image: {name}")

    class Engine:
        images = Images

    monkeypatch.setattr(docker, "from_env", lambda: Engine)
    [(line, field, msg)] = problems(
        tmp_path,
        "  - name: deploy\n    at: 2s\n    fault: {deploy: {service: web, image: 'shop:v2'}}\n",
    )
    assert (line, field) == (12, "chaos[0].fault.deploy.image")
    assert "no image 'shop:v2' on this machine" in msg and "docker build -t shop:v2" in msg
