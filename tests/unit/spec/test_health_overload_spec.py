"""Issue 13, asks 3, 4 and 6: the health-check and overload settings reach the configs they land
in, and settings that could never apply are refused before anything starts, one line each,
`file:line: field: problem (fix)` (a maxconn above the pool behind it is a warning)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness.errors import SpecError
from harness.plan.build import make_plan
from harness.plan.model import ScrapeTarget
from harness.spec.loader import load_topology

REPO = Path(__file__).resolve().parents[3]
LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<field>\S+): (?P<msg>.+) \((?P<fix>.+)\)$")

STACK = """\
version: 1
name: t
services:
  lb: {kind: haproxy, backends: web}
  edge: {kind: nginx-lb, backends: web}
  web: {kind: web, max_children: 4}
  redis: {kind: redis}
  mysql: {kind: mariadb}
assertions:
  - overload: {accepted_max: 500ms, rejected_max: 100ms}
"""


def load(tmp_path: Path, text: str, **kw: Any) -> Any:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    return load_topology(path, **kw)


def problems(tmp_path: Path, text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(SpecError) as info:
        load(tmp_path, text)
    out = []
    for p in info.value.problems:
        m = LINE.match(p)
        assert m, f"not `file:line: field: problem (fix)`: {p!r}"
        out.append((int(m["line"]), m["field"], m["msg"] + " (" + m["fix"] + ")"))
    return out


def files(tmp_path: Path, text: str, instance: str) -> dict[str, str]:
    plan = make_plan(load(tmp_path, text), "r1", "10.213.9.0/24", [ScrapeTarget("l", "x:1", "l")])
    return plan.container(instance).files


def test_haproxy_takes_slowstart_maxconn_and_timeout_queue(tmp_path: Path) -> None:
    text = STACK.replace(
        "{kind: haproxy, backends: web}",
        "{kind: haproxy, backends: web, slowstart: 5s, maxconn: 4, timeout_queue: 100ms}",
    )
    cfg = files(tmp_path, text, "lb")["/etc/haproxy/haproxy.cfg"]
    assert "    timeout queue 100ms\n" in cfg
    assert re.search(
        r"default-server inter \d+ms fall \d+ rise \d+ slowstart 5000ms maxconn 4\n", cfg
    )
    plain = files(tmp_path, STACK, "lb")["/etc/haproxy/haproxy.cfg"]
    assert "timeout queue" not in plain and "slowstart" not in plain and " maxconn 4\n" not in plain


def test_nginx_takes_limit_req_and_limit_conn_with_a_fast_status(tmp_path: Path) -> None:
    text = STACK.replace(
        "{kind: nginx-lb, backends: web}",
        "{kind: nginx-lb, backends: web, limit_req: {rate: 40, burst: 5}, limit_conn: 8, "
        "limit_status: 429}",
    )
    cfg = files(tmp_path, text, "edge")["/etc/nginx/nginx.conf"]
    assert "limit_req_zone $hostname zone=harness_req:1m rate=40r/s;" in cfg
    assert "limit_conn_zone $hostname zone=harness_conn:1m;" in cfg  # a key never empty
    assert "limit_req zone=harness_req burst=5 nodelay;" in cfg
    assert "limit_conn harness_conn 8;" in cfg
    assert "limit_req_status 429;" in cfg and "limit_conn_status 429;" in cfg
    assert "limit_req" not in files(tmp_path, STACK, "edge")["/etc/nginx/nginx.conf"]


def test_the_web_pool_takes_max_children_and_listen_backlog(tmp_path: Path) -> None:
    text = STACK.replace("max_children: 4}", "max_children: 4, listen_backlog: 16}")
    pool = files(tmp_path, text, "web")["/etc/php/8.2/fpm/pool.d/www.conf"]
    assert "pm.max_children = 4\n" in pool and "listen.backlog = 16\n" in pool
    assert "listen.backlog" not in files(tmp_path, STACK, "web")["/etc/php/8.2/fpm/pool.d/www.conf"]


def test_settings_that_could_never_apply_are_refused_on_their_line(tmp_path: Path) -> None:
    text = STACK.replace(
        "{kind: haproxy, backends: web}", "{kind: haproxy, backends: web, timeout_queue: 1s}"
    ).replace(
        "{kind: nginx-lb, backends: web}", "{kind: nginx-lb, backends: web, limit_status: 429}"
    )
    got = problems(tmp_path, text)
    fields = {(line, field) for line, field, _ in got}
    assert fields == {(4, "services.lb.timeout_queue"), (5, "services.edge.limit_status")}
    msgs = " ".join(m for _, _, m in got)
    assert "add maxconn: N" in msgs and "add limit_req: {rate: N} or limit_conn: N" in msgs


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("accepted_max: 500ms", "accepted_max: 0s", "overload.accepted_max"),
        ("rejected_max: 100ms", "rejected_max: 100ms, reject_status: [200]", "reject_status"),
        ("rejected_max: 100ms", "rejected_max: 100ms, max_stalled_ratio: 1.5", "max_stalled_ratio"),
        ("max_children: 4}", "max_children: 0}", "services.web.max_children"),
        ("{kind: haproxy, backends: web}", "{kind: haproxy, backends: web, maxconn: 0}", "maxconn"),
    ],
)
def test_nonsense_values_are_one_line_errors(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    [(_, got, _)] = problems(tmp_path, STACK.replace(old, new))
    assert field in got


def test_maxconn_above_the_pool_is_a_warning_naming_the_fix(tmp_path: Path) -> None:
    warnings: list[str] = []
    text = STACK.replace(
        "{kind: haproxy, backends: web}", "{kind: haproxy, backends: web, maxconn: 20}"
    )
    load(tmp_path, text, warnings=warnings)
    [w] = warnings
    assert ":4: services.lb.maxconn: warning: maxconn: 20" in w and "(use maxconn: 4)" in w


def test_the_schema_names_every_new_key() -> None:
    from harness.spec.schema import json_schema

    text = str(json_schema())
    for key in (
        "slowstart", "maxconn", "timeout_queue", "limit_req", "limit_conn", "limit_status",
        "listen_backlog", "max_children", "accepted_max", "rejected_max", "reject_status",
        "max_stalled_ratio",
    ):  # fmt: skip
        assert f"'{key}'" in text, key


@pytest.mark.parametrize(
    "name",
    [
        "health-liveness.yaml",
        "overload-shed.yaml",
        "overload-nginx.yaml",
        "overload-two-of-three.yaml",
        "examples/deep-health-check.yaml",
        "examples/overload-no-limits.yaml",
    ],
)
def test_the_shipped_topologies_validate_without_warnings(name: str) -> None:
    warnings: list[str] = []
    load_topology(REPO / "topologies" / name, warnings=warnings)
    assert warnings == []
