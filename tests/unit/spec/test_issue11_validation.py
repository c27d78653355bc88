"""Issue 11, "every bad topology is refused before anything starts": one test (or more) per
numbered item, each built from the input the issue names. Every problem is one line,
`file:line: field: problem (fix)`, asserted at its line and field; a topology that validates
is one `make_plan` can build.

Errors and warnings of item 16 (warnings are printed, one line each, `... field: warning: ...`,
and never fail validation):

    error    a `for:` window outliving the load (issue 9), overlapping windows on one target,
             `count:` above the replicas, all stages at 0 users, a load of 0s, `config:` that is
             no regular file (`/`, `../..`, a FIFO, a device), `app:` without index.php (`/`,
             `../..`, `/etc`), duplicate links
    warning  `session_continuity` with `sessions: files` behind a non-sticky LB, `config:` or
             `app:` outside the topology's directory (`/etc/passwd`), php-fpm spare-server
             settings with a pm other than dynamic
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import SpecError
from harness.plan.build import make_plan
from harness.plan.check import load_topology
from harness.spec.models import Topology
from tests.unit.spec.test_spec_errors import BASE, edit

SUBNET = "10.213.9.0/24"
LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<field>\S+): (?P<msg>.+) \((?P<fix>.+)\)$")


def write(tmp_path: Path, text: str, name: str = "topology.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, **kw: Any) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_topology(path, **kw)
    for p in info.value.problems:
        m = LINE.match(p)
        assert m and m["file"] == str(path), f"not `file:line: field: problem (fix)`: {p!r}"
    return [p[len(str(path)) + 1 :] for p in info.value.problems]


def valid(tmp_path: Path, text: str, **kw: Any) -> Topology:
    return load_topology(write(tmp_path, text), **kw)


def plan_of(tmp_path: Path, topo: Topology, subnet: str = SUBNET) -> Any:
    return make_plan(topo, "r1", subnet, [], base_dir=tmp_path)


def one(tmp_path: Path, text: str, line: int, field: str, phrase: str) -> str:
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    got_line, got_field, msg = found[0].split(": ", 2)[0], *found[0].split(": ", 2)[1:]
    assert (int(got_line), got_field) == (line, field), found[0]
    assert phrase in msg, found[0]
    return found[0]


def service(line: str) -> str:
    """BASE with one more service, declared after mysql (line 17)."""
    return edit("  mysql: {kind: mariadb}\n", "  mysql: {kind: mariadb}\n" + line + "\n")


def distinct_addresses(plan: Any) -> None:
    ips = [c.ip for c in plan.containers]
    assert len(ips) == len(set(ips))
    assert not set(plan.vips.values()) & set(ips)
    assert len(set(plan.vips.values())) == len(plan.vips)
    net = ipaddress.IPv4Network(plan.subnet)
    for addr in ips + list(plan.vips.values()):
        assert ipaddress.IPv4Address(addr) in net and addr != plan.gateway


# ---------------------------------------------------------------- 1. implicit dependency cycles


def test_1_a_database_depending_on_the_lb_is_a_cycle_through_the_lb_and_web(tmp_path: Path) -> None:
    text = edit("  mysql: {kind: mariadb}", "  mysql: {kind: mariadb, depends_on: [lb]}")
    assert problems(tmp_path, text) == [
        "16: services.mysql.depends_on[0]: dependency cycle mysql -> lb -> web -> mysql "
        "(lb balances web; web depends_on mysql) (remove 'lb' from mysql's depends_on)"
    ]


def test_1_redis_depending_on_web_is_a_cycle(tmp_path: Path) -> None:
    text = edit("  redis: {kind: redis}", "  redis: {kind: redis, depends_on: [web]}")
    one(tmp_path, text, 15, "services.redis.depends_on[0]", "dependency cycle redis -> web -> redis")


def test_1_web_depending_on_its_own_lb_is_a_cycle(tmp_path: Path) -> None:
    text = edit("[redis, mysql]", "[redis, mysql, lb]")
    one(tmp_path, text, 14, "services.web.depends_on[2]", "web -> lb -> web (lb balances web)")


def test_1_a_cycle_through_a_link_and_the_toxiproxy(tmp_path: Path) -> None:
    text = edit("  mysql: {kind: mariadb}", "  mysql: {kind: mariadb, depends_on: [web]}")
    text += "links:\n  - {from: web, to: mysql}\n"
    found = problems(tmp_path, text)
    assert found[0].startswith("16: services.mysql.depends_on[0]: dependency cycle mysql -> web")


def test_1_a_link_from_a_service_to_itself(tmp_path: Path) -> None:
    one(
        tmp_path,
        BASE + "links:\n  - {from: mysql, to: mysql}\n",
        27,
        "links[0].to",
        "a link from 'mysql' to itself carries no traffic",
    )


def test_1_a_link_from_a_service_that_never_connects(tmp_path: Path) -> None:
    one(tmp_path, BASE + "links:\n  - {from: lb, to: mysql}\n", 27, "links[0].from", "'lb' is haproxy")


# ---------------------------------------------------------------- 2. names that clash


def test_2_a_service_named_like_another_services_container(tmp_path: Path) -> None:
    one(
        tmp_path,
        service("  web-1: {kind: redis}"),
        17,
        "services.web-1",
        "its container 'web-1' would have the name of a container of 'web'",
    )


def test_2_a_service_named_like_a_container_of_another_is_ambiguous(tmp_path: Path) -> None:
    one(
        tmp_path,
        service("  web-2: {kind: redis, replicas: 2}"),
        17,
        "services.web-2",
        "'web-2' is also the name of a container of 'web'",
    )


@pytest.mark.parametrize("name", ["prometheus", "toxiproxy"])
def test_2_the_names_of_the_automatic_services_are_reserved(tmp_path: Path, name: str) -> None:
    one(
        tmp_path,
        service(f"  {name}: {{kind: redis}}"),
        17,
        f"services.{name}",
        f"'{name}' is the name of the {name} the harness adds to every run",
    )


def test_2_one_prometheus_with_one_container(tmp_path: Path) -> None:
    found = problems(
        tmp_path, service("  prometheus: {kind: prometheus, replicas: 2}\n  prom2: {kind: prometheus}")
    )
    assert found == [
        "17: services.prometheus.replicas: the harness runs one prometheus container (remove "
        "replicas, or set replicas: 1)",
        "18: services.prom2.kind: a run has one prometheus, and 'prometheus' already is it "
        "(remove this one)",
    ]


def test_2_a_declared_prometheus_under_another_name_is_the_run_s(tmp_path: Path) -> None:
    topo = valid(tmp_path, service("  prom: {kind: prometheus, scrape_interval: 2s}"))
    plan = plan_of(tmp_path, topo)
    assert [c.instance for c in plan.containers if c.kind == "prometheus"] == ["prom"]


# ---------------------------------------------------------------- 3. address collisions

NET = "network: {subnet: 10.213.7.0/24}\n"


def test_3_an_explicit_vip_on_a_container_s_address_moves_the_container(tmp_path: Path) -> None:
    topo = valid(tmp_path, edit("vip: auto", "vip: 10.213.7.10") + NET)
    plan = plan_of(tmp_path, topo, "10.213.7.0/24")
    assert plan.vips == {"lb": "10.213.7.10"}
    distinct_addresses(plan)


def test_3_an_explicit_vip_on_another_lb_s_automatic_vip(tmp_path: Path) -> None:
    lb2 = "  lb2: {kind: haproxy, replicas: 2, backends: web, keepalived: {vip: 10.213.7.200}}\n"
    text = BASE.replace("  web:\n", lb2 + "  web:\n", 1) + NET
    plan = plan_of(tmp_path, valid(tmp_path, text), "10.213.7.0/24")
    assert plan.vips == {"lb": "10.213.7.201", "lb2": "10.213.7.200"}
    distinct_addresses(plan)
    one_conf = plan.container("lb-1").files["/etc/keepalived/keepalived.conf"]
    two_conf = plan.container("lb2-1").files["/etc/keepalived/keepalived.conf"]
    assert "virtual_router_id 51" in one_conf and "virtual_router_id 52" in two_conf


def test_3_an_explicit_vip_among_the_harness_s_own_addresses(tmp_path: Path) -> None:
    one(
        tmp_path,
        edit("vip: auto", "vip: 10.213.7.5") + NET,
        7,
        "services.lb.keepalived.vip",
        "10.213.7.5 is among .2 to .9 of 10.213.7.0/24",
    )


def _many(n: int) -> str:
    return service("\n".join(f"  r{i}: {{kind: redis, replicas: 20}}" for i in range(n)))


def test_3_ten_services_of_twenty_replicas_never_take_the_vip(tmp_path: Path) -> None:
    topo = valid(tmp_path, _many(10))  # 200 + 8 containers and the VIP: they fit
    plan = plan_of(tmp_path, topo)
    assert len(plan.containers) == 208
    distinct_addresses(plan)


def test_3_thirteen_services_of_twenty_replicas_do_not_fit_a_24(tmp_path: Path) -> None:
    one(
        tmp_path,
        _many(13),
        3,
        "services",
        "268 containers (with the automatic prometheus and toxiproxy) and 1 VIP need 269 "
        "addresses, but a /24 has 245 from .10 up (lower replicas, or set network: "
        "{subnet: 10.213.0.0/23})",
    )


def test_3_a_bigger_subnet_fits_them(tmp_path: Path) -> None:
    topo = valid(tmp_path, _many(13) + "network: {subnet: 10.213.0.0/22}\n")
    plan = plan_of(tmp_path, topo, "10.213.0.0/22")
    distinct_addresses(plan)
    assert "/22 dev eth0" in plan.container("lb-1").files["/etc/keepalived/keepalived.conf"]


# ---------------------------------------------------------------- 4. config injection


def test_4_a_check_path_with_a_newline_cannot_write_into_haproxy_cfg(tmp_path: Path) -> None:
    text = edit("path: /health,", 'path: "/health\\n    server evil 10.0.0.1:80",')
    found = one(tmp_path, text, 9, "services.lb.check.path", "is not a URL path: '\\n' cannot appear")
    assert "\n" not in found


@pytest.mark.parametrize("path", ["'/he alth'", "'/a#b'", "'/a\"b'", "health", "'/$HOME'", "'/%zz'"])
def test_4_a_check_path_is_a_url_path(tmp_path: Path, path: str) -> None:
    one(tmp_path, edit("path: /health,", f"path: {path},"), 9, "services.lb.check.path", "")


def test_4_a_valid_check_path_renders_as_one_word(tmp_path: Path) -> None:
    topo = valid(tmp_path, edit("path: /health,", "path: '/health?deep=1&x=%20',"))
    cfg = plan_of(tmp_path, topo).container("lb-1").files["/etc/haproxy/haproxy.cfg"]
    assert "option httpchk GET /health?deep=1&x=%20\n" in cfg


@pytest.mark.parametrize(
    ("setting", "field", "phrase"),
    [
        ("healthcheck: {http: '/a b'}", "healthcheck.http", "String should match pattern"),
        ("healthcheck: {http: ':99999/x'}", "healthcheck.http", "port 99999 is outside 1-65535"),
        ("healthcheck: {file: 'run/ready'}", "healthcheck.file", "absolute path"),
        ("env: {'A=B': x}", 'env["A=B"]', "is not a valid name"),
        ("image: 'debian bookworm'", "image", "String should match pattern"),
        ("resources: {memory: 1k}", "resources.memory", "below the 6m Docker allows"),
    ],
)
def test_4_other_values_that_land_in_configs_or_commands(
    tmp_path: Path, setting: str, field: str, phrase: str
) -> None:
    text = edit("  redis: {kind: redis}", "  redis: {kind: redis, " + setting + "}")
    found = problems(tmp_path, text)
    assert any(f"15: services.redis.{field}: " in p and phrase in p for p in found), found


def test_4_user_classes_are_python_names(tmp_path: Path) -> None:
    text = edit("  users: 20", "  users: 20\n  user_classes: {'--headless': {weight: 1}}")
    found = problems(tmp_path, text)
    assert found == [
        "19: load.user_classes.--headless: '--headless' is not a valid name (use letters, "
        "digits and _, not starting with a digit)"
    ]


# ---------------------------------------------------------------- 5. files a run needs


def test_5_a_missing_locustfile(tmp_path: Path) -> None:
    one(
        tmp_path,
        edit("  users: 20", "  locustfile: nosuch.py\n  users: 20"),
        18,
        "load.locustfile",
        f"no file {tmp_path}/nosuch.py (paths are relative to the topology file",
    )


def test_5_a_locustfile_is_relative_to_the_topology_file(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("from locust import HttpUser\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = os.getcwd()
    os.chdir(elsewhere)
    try:
        topo = valid(tmp_path, edit("  users: 20", "  locustfile: mine.py\n  users: 20"))
    finally:
        os.chdir(cwd)
    assert topo.load.locustfile == str(tmp_path / "mine.py")


def test_5_the_built_in_locustfiles_are_found_from_anywhere(tmp_path: Path) -> None:
    topo = valid(tmp_path, edit("  users: 20", "  locustfile: locustfiles/mix.py\n  users: 20"))
    root = Path(__file__).resolve().parents[3]
    assert topo.load.locustfile == str(root / "locustfiles" / "mix.py")


def _with_template(tmp_path: Path, template: str) -> str:
    (tmp_path / "haproxy.cfg.j2").write_text(template)
    return edit("    backends: web\n", "    backends: web\n    config: haproxy.cfg.j2\n")


def test_5_a_template_with_a_syntax_error(tmp_path: Path) -> None:
    text = _with_template(tmp_path, "global\n{% for i in %}\n{% endfor %}\n")
    one(
        tmp_path,
        text,
        9,
        "services.lb.config",
        f"{tmp_path}/haproxy.cfg.j2:2: template syntax error: Expected an expression",
    )


def test_5_a_template_naming_an_undefined_service(tmp_path: Path) -> None:
    text = _with_template(tmp_path, "global\n\n{% for i in services.webb.instances %}x{% endfor %}\n")
    found = one(tmp_path, text, 9, "services.lb.config", f"{tmp_path}/haproxy.cfg.j2:3:")
    assert "'webb'" in found and "the services are lb, web, redis, mysql" in found


def test_5_a_template_runs_sandboxed(tmp_path: Path) -> None:
    text = _with_template(tmp_path, "{{ ''.__class__.__mro__ }}\n")
    one(tmp_path, text, 9, "services.lb.config", "haproxy.cfg.j2:1: the template failed: SecurityError")


def test_5_a_good_template_renders_with_the_addresses(tmp_path: Path) -> None:
    text = _with_template(tmp_path, "{% for i in services.web.instances %}{{ i.ip }}\n{% endfor %}")
    plan = plan_of(tmp_path, valid(tmp_path, text))
    cfg = plan.container("lb-1").files["/etc/haproxy/haproxy.cfg"]
    assert cfg.split() == [plan.container(f"web-{i}").ip for i in (1, 2, 3)]


# ---------------------------------------------------------------- 6. strict types


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "phrase"),
    [
        ("replicas: 3", "replicas: true", 12, "services.web.replicas", "valid integer, got the boolean true"),
        ("replicas: 3", 'replicas: "3"', 12, "services.web.replicas", "got the text '3' (write 3 without quotes)"),
        ("users: 20", "users: true", 18, "load.users", "valid integer, got the boolean true"),
        ("    backends: web\n", "    backends: web\n    cookie: 'yes'\n", 9, "services.lb.cookie", "valid boolean, got the text 'yes' (write true or false)"),
        ("name: ha", "name: !!binary aGE=", 2, "name", "valid string, got binary data"),
        ("version: 1", "version: true", 1, "version", "Input should be 1"),
        ("max_error_ratio: 0.01", "max_error_ratio: '0.01'", 25, "assertions[1].error_budget.max_error_ratio", "write 0.01 without quotes"),
    ],
)
def test_6_no_coercion_where_the_schema_says_integer_or_boolean(
    tmp_path: Path, old: str, new: str, line: int, field: str, phrase: str
) -> None:
    one(tmp_path, edit(old, new), line, field, phrase)


def test_6_replicas_true_is_reported_at_its_line_only(tmp_path: Path) -> None:
    assert len(problems(tmp_path, edit("replicas: 3", "replicas: true"))) == 1


# ---------------------------------------------------------------- 7. out-of-range values


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "phrase"),
    [
        ("interval: 500ms", "interval: 0s", 9, "services.lb.check.interval", "0s is too short: a check every 0ms is no check (use at least 10ms)"),
        ("advert_int: 1s", "advert_int: 0s", 7, "services.lb.keepalived.advert_int", "(use at least 1s)"),
        ("advert_int: 1s", "advert_int: 1h", 7, "services.lb.keepalived.advert_int", "1h is too long: VRRPv2 advertises whole seconds from 1 to 255 (use at most 4m15s)"),
        ("advert_int: 1s", "advert_int: 1500ms", 7, "services.lb.keepalived.advert_int", "not a whole number of seconds"),
        ("  redis: {kind: redis}", "  redis: {kind: custom, image: 'r:1', ports: [0]}", 15, "services.redis.ports[0]", "(use at least 1)"),
        ("  redis: {kind: redis}", "  redis: {kind: custom, image: 'r:1', ports: [70000]}", 15, "services.redis.ports[0]", "(use at most 65535)"),
        ("  redis: {kind: redis}", "  redis: {kind: redis, healthcheck: {tcp: 0}}", 15, "services.redis.healthcheck.tcp", "(use at least 1)"),
        ("{kill: web-1}", "{process_kill: {target: web-1, process: nginx, signal: SIGFOO}}", 22, "chaos[0].fault.process_kill.signal", "'SIGFOO' is not a signal (use e.g. SIGKILL"),
        ("  - error_budget: {max_error_ratio: 0.01}", "  - {promql: '', below: 1}", 25, "assertions[1].promql", "an empty PromQL expression measures nothing (write one"),
        ("  - error_budget: {max_error_ratio: 0.01}", "  - {promql: '  ', below: 1}", 25, "assertions[1].promql", "an empty PromQL expression measures nothing (write one"),
        ("duration: 30s", "duration: 0s", 20, "load.duration", "(use at least 1s)"),
        ("max_error_ratio: 0.01", "max_error_ratio: 2", 25, "assertions[1].error_budget.max_error_ratio", "(use at most 1)"),
    ],
)
def test_7_out_of_range_values(
    tmp_path: Path, old: str, new: str, line: int, field: str, phrase: str
) -> None:
    one(tmp_path, edit(old, new), line, field, phrase)


NGINX = """\
version: 1
name: n
services:
  lb: {kind: nginx-lb, backends: web, weights: {web-1: WEIGHT}}
  web: {kind: web, replicas: 2, sessions: files}
  mysql: {kind: mariadb}
assertions:
  - error_budget: {}
"""


@pytest.mark.parametrize("weight", [0, -1])
def test_7_nginx_weights_are_positive(tmp_path: Path, weight: int) -> None:
    one(tmp_path, NGINX.replace("WEIGHT", str(weight)), 4, "services.lb.weights.web-1", "(use at least 1)")


def test_7_nginx_next_upstream_is_not_empty_and_off_stands_alone(tmp_path: Path) -> None:
    base = NGINX.replace("weights: {web-1: WEIGHT}", "next_upstream: NU")
    one(tmp_path, base.replace("NU", "[]"), 4, "services.lb.next_upstream", "(add at least 1 item)")
    one(tmp_path, base.replace("NU", "['off', error]"), 4, "services.lb.next_upstream", "keep off alone")
    one(
        tmp_path,
        base.replace("NU", "[off]"),
        4,
        "services.lb.next_upstream[0]",
        "got the boolean false (quote it, e.g. 'off': YAML reads a bare off, on, yes or no as",
    )


FPM = """\
version: 1
name: f
services:
  lb: {kind: nginx-lb, protocol: fastcgi, backends: app}
  app: {kind: php-fpm, sessions: files, pm: dynamic, POOL}
  mysql: {kind: mariadb}
assertions:
  - error_budget: {}
"""


@pytest.mark.parametrize(
    ("pool", "field", "phrase"),
    [
        ("max_children: 4, start_servers: 5, max_spare_servers: 6", "max_spare_servers", "above max_children: 4"),
        ("max_children: 4, start_servers: 5, max_spare_servers: 3", "start_servers", "start_servers: 5 is above max_children: 4"),
        ("start_servers: 1, min_spare_servers: 2, max_spare_servers: 3", "start_servers", "must lie between min_spare_servers (2)"),
        ("min_spare_servers: 4, max_spare_servers: 3, start_servers: 3", "min_spare_servers", "above max_spare_servers: 3"),
    ],
)
def test_7_php_fpm_pools_php_fpm_would_refuse(tmp_path: Path, pool: str, field: str, phrase: str) -> None:
    found = problems(tmp_path, FPM.replace("POOL", pool))
    assert any(f"5: services.app.{field}: " in p and phrase in p for p in found), found


def test_7_a_valid_dynamic_pool_renders(tmp_path: Path) -> None:
    topo = valid(tmp_path, FPM.replace("POOL", "max_children: 6, start_servers: 3"))
    conf = plan_of(tmp_path, topo).container("app").files["/etc/php/8.2/fpm/pool.d/www.conf"]
    assert "pm = dynamic" in conf and "pm.start_servers = 3" in conf


# ---------------------------------------------------------------- 8. an outside load.url


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8", "http://example.org/app", "http://10.1.2.3:8080", "http://web-9"]
)
def test_8_an_outside_load_url_is_refused_at_validation_at_its_line(tmp_path: Path, url: str) -> None:
    text = edit("  users: 20", f"  url: '{url}'\n  users: 20")
    found = one(tmp_path, text, 18, "load.url", "")
    assert "--allow-external-target" in found


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost", "http://web-2/x"])
def test_8_loopback_and_the_run_s_containers_are_fine(tmp_path: Path, url: str) -> None:
    valid(tmp_path, edit("  users: 20", f"  url: '{url}'\n  users: 20"))


def test_8_an_address_inside_network_subnet_is_fine(tmp_path: Path) -> None:
    valid(tmp_path, edit("  users: 20", "  url: 'http://10.213.7.77'\n  users: 20") + NET)


def test_8_allow_external_target_lets_it_through(tmp_path: Path) -> None:
    text = edit("  users: 20", "  url: 'http://8.8.8.8'\n  users: 20")
    assert valid(tmp_path, text, allow_external_target=True).load.url == "http://8.8.8.8"


# ---------------------------------------------------------------- 9. long paths

LONG = "a" * 300


@pytest.mark.parametrize(
    ("old", "new", "line", "field"),
    [
        ("    backends: web\n", f"    backends: web\n    config: {LONG}.cfg\n", 9, "services.lb.config"),
        ("    sessions: redis\n", f"    sessions: redis\n    app: {LONG}\n", 14, "services.web.app"),
        ("  - error_budget: {max_error_ratio: 0.01}", f"  - testinfra: {{module: {LONG}.py, hosts: web}}", 25, "assertions[1].testinfra.module"),
        ("  users: 20", f"  locustfile: {LONG}.py\n  users: 20", 18, "load.locustfile"),
        ("  users: 20", f"  locustfile: x/{'b' * 5000}.py\n  users: 20", 18, "load.locustfile"),
    ],
)
def test_9_a_path_longer_than_a_file_name_can_be(
    tmp_path: Path, old: str, new: str, line: int, field: str
) -> None:
    one(tmp_path, edit(old, new), line, field, "longer than")


def test_9_a_long_experiments_path(tmp_path: Path) -> None:
    one(tmp_path, BASE + f"experiments: [{LONG}.yaml]\n", 26, "experiments[0]", "longer than 255 bytes")


def test_9_a_long_topology_file_name(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_topology(tmp_path / f"{LONG}.yaml")
    [line] = info.value.problems
    assert line.endswith(
        f"(file): the path component '{'a' * 20}...' is longer than 255 bytes, more than a file "
        "name can be (use a shorter name)"
    )


# ---------------------------------------------------------------- 10. a deep depends_on chain


def test_10_a_1500_service_depends_on_chain(tmp_path: Path) -> None:
    chain = "\n".join(
        f"  s{i}: {{kind: redis" + (f", depends_on: [s{i - 1}]" if i else "") + "}"
        for i in range(1500)
    )
    text = service(chain) + "network: {subnet: 10.213.0.0/16}\n"
    started = time.monotonic()
    topo = valid(tmp_path, text)
    plan = plan_of(tmp_path, topo, "10.213.0.0/16")
    assert len(plan.levels) > 1500 and time.monotonic() - started < 30
    text = text.replace("s0: {kind: redis}", "s0: {kind: redis, depends_on: [s1499]}")
    [found] = problems(tmp_path, text)
    assert re.match(r"^\d+: services\.s\d+\.depends_on\[0\]: dependency cycle s\d+ -> ", found)
    assert "(1500 services)" in found and len(found) < 500


# ---------------------------------------------------------------- 11. user text printed verbatim


def _cli(*args: str) -> tuple[int, str, str]:
    from harness.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(list(args))
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.parametrize("name", ["[/]", "[red]x[/red]", ":smile:", "[bold]:fire:"])
def test_11_a_file_name_with_markup_or_emoji_codes_is_printed_verbatim(
    tmp_path: Path, name: str
) -> None:
    good = tmp_path / f"{name}.yaml"  # `[/]` makes a directory `[` and a file `].yaml`
    good.parent.mkdir(parents=True, exist_ok=True)
    good.write_text(BASE)
    code, out, _ = _cli("validate", str(good))
    assert code == 0 and out.replace("\n", "").startswith(f"{good}: valid")
    bad = tmp_path / f"bad{name}.yaml"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(edit("kind: haproxy", f"kind: '{name}'"))
    code, _, err = _cli("validate", str(bad))
    assert code == 3
    assert err.replace("\n", "").startswith(f"{bad}:5: services.lb.kind: unknown kind '{name}'")


def test_11_control_characters_in_a_file_name_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "evil\x1b[2J.yaml"
    path.write_text(BASE)
    code, out, _ = _cli("validate", str(path))
    assert code == 0 and "\x1b" not in out and "\\x1b[2J" in out


# ---------------------------------------------------------------- 12. /dev/zero, FIFOs, huge files


def test_12_dev_zero_is_refused_without_reading_it() -> None:
    with pytest.raises(SpecError) as info:
        load_topology("/dev/zero")
    assert info.value.problems == [
        "/dev/zero:1: (file): it is a device, not a topology file (give the path of a regular file)"
    ]


def test_12_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_topology(fifo)
    assert time.monotonic() - started < 2
    assert "it is a named pipe (FIFO), not a topology file" in info.value.problems[0]


def test_12_a_fifo_as_a_config_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.cfg")
    text = edit("    backends: web\n", "    backends: web\n    config: pipe.cfg\n")
    one(tmp_path, text, 9, "services.lb.config", "is a named pipe (FIFO), not a regular file")


def test_12_a_huge_file_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as f:
        f.write(BASE)
        f.write("#" * 50_000_000)
    started = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_topology(path)
    assert time.monotonic() - started < 2
    assert info.value.problems == [
        f"{path}:1: (file): the topology file is {len(BASE) + 50_000_000:,} bytes; at most "
        "262,144 are read "
        "(a topology is a few KB: move chaos steps to experiments:, or remove what is not needed)"
    ]


def test_12_deep_nesting_is_refused_before_python_s_recursion_limit(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE + "seed: " + "[" * 5000 + "]" * 5000 + "\n")
    assert found == ["26: (yaml): the file nests deeper than 64 levels (flatten it)"]


# ---------------------------------------------------------------- 13. an unclosed quote


def test_13_an_unclosed_quote_is_reported_where_it_opens(tmp_path: Path) -> None:
    found = problems(tmp_path, edit("name: ha", 'name: "ha'))
    assert len(found) == 1 and found[0].startswith(
        "2: (yaml): invalid YAML: the quoted value that opens on this line"
    )
    assert found[0].endswith("(close the quote on this line)")


def test_13_an_unclosed_quote_at_the_end_of_the_file(tmp_path: Path) -> None:
    found = problems(tmp_path, BASE + "description: 'never closed\n")
    assert found[0].startswith("26: (yaml): invalid YAML: the quoted value that opens on this line")


def test_13_an_unclosed_bracket_names_where_it_opened(tmp_path: Path) -> None:
    found = problems(tmp_path, edit("[redis, mysql]", "[redis, mysql"))
    assert found[0].startswith("15: (yaml): invalid YAML: expected ',' or ']'")
    assert "flow sequence opened at line 14" in found[0]


# ---------------------------------------------------------------- 14. every problem of a service


def test_14_every_problem_of_one_service_is_reported(tmp_path: Path) -> None:
    text = edit("    replicas: 3\n    sessions: redis\n", "    replica: 3\n    sessions: memcached\n")
    assert problems(tmp_path, text) == [
        "12: services.web.replica: unknown key 'replica' (did you mean 'replicas'?)",
        "13: services.web.sessions: Input should be 'redis' or 'files' (use one of the allowed values)",
    ]


def test_14_every_problem_of_every_model(tmp_path: Path) -> None:
    text = edit("fall: 2, rise: 2", "fal: 2, rise: 0").replace("spawn_rate: 20", "spawn_rat: 20")
    fields = [p.split(": ")[1] for p in problems(tmp_path, text)]
    assert sorted(fields) == ["load.spawn_rat", "services.lb.check.fal", "services.lb.check.rise"]


# ---------------------------------------------------------------- 15. a fix part on every line


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        (edit("  redis: {kind: redis}", "  redis: {kind: redis, healthcheck: {http: /x, tcp: 6379}}"), "a healthcheck needs exactly one of http, tcp, exec, file, got http, tcp (keep one)"),
        (edit("  redis: {kind: redis}", "  redis: {kind: redis, healthcheck: {timeout: 5s}}"), "got none (add e.g. http: /health or tcp: 6379)"),
        (edit("  - error_budget: {max_error_ratio: 0.01}", "  - {promql: up, between: [2, 1]}"), "needs low <= high, got [2, 1] (write [1, 2])"),
        (edit("  - error_budget: {max_error_ratio: 0.01}", "  - {promql: up, between: [2]}"), "between[1]: Field required (add it)"),
        (edit("  - error_budget: {max_error_ratio: 0.01}", "  - {promql: up, between: 5}"), "valid tuple (write a list of two numbers, e.g. [0, 1])"),
        (NGINX.replace("WEIGHT", "1").replace("web-1:", "web-9:"), "'web-9' is not an instance of web (use one of web-1, web-2)"),
    ],
)
def test_15_messages_that_had_no_fix(tmp_path: Path, text: str, phrase: str) -> None:
    found = problems(tmp_path, text)
    assert any(phrase in p for p in found), found


def test_15_no_lost_writes_without_a_database(tmp_path: Path) -> None:
    text = """\
version: 1
name: c
services:
  lb: {kind: haproxy, backends: app}
  app: {kind: custom, image: 'nginx:1'}
assertions:
  - no_lost_writes: {}
"""
    one(tmp_path, text, 7, "assertions[0].no_lost_writes", "needs a mariadb or mysql service (add one")


def test_15_an_empty_experiment(tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text("version: 1\nname: e\nchaos: []\n")
    with pytest.raises(SpecError) as info:
        load_topology(write(tmp_path, BASE + "experiments: [e.yaml]\n"))
    assert info.value.problems == [
        f"{tmp_path}/e.yaml:3: chaos: List should have at least 1 item after validation, "
        "not 0 (add at least 1 item)"
    ]


# ---------------------------------------------------------------- 16. semantic nonsense


def test_16_a_window_of_an_hour_in_a_30s_load_is_an_error(tmp_path: Path) -> None:
    one(tmp_path, edit("at: 10s,", "at: 10s, for: 1h,"), 22, "chaos[0].for", "judged against no traffic")


def steps(*lines: str) -> str:
    return edit(
        "  - {name: kill web-1, at: 10s, fault: {kill: web-1}}",
        "\n".join(f"  - {line}" for line in lines),
    )


def test_16_overlapping_windows_on_one_target_are_an_error(tmp_path: Path) -> None:
    text = steps(
        "{name: freeze, at: 5s, for: 10s, fault: {pause: web-1}}",
        "{name: stop it, at: 8s, for: 2s, fault: {stop: web-1}}",
    )
    assert problems(tmp_path, text) == [
        "23: chaos[1].at: 'stop it' hits container web-1 while step 'freeze' holds it (pause "
        "from 5s to 15s): the first rollback would undo or break the other fault (move one "
        "outside the other's window, or target another instance)"
    ]


def test_16_a_kill_inside_a_pause_window_on_one_target_is_an_error(tmp_path: Path) -> None:
    text = steps(
        "{name: freeze, at: 5s, for: 10s, fault: {pause: web-1}}",
        "{name: kill, at: 8s, fault: {kill: web-1}}",
    )
    one(tmp_path, text, 23, "chaos[1].at", "'kill' hits container web-1 while step 'freeze' holds it")


def test_16_overlapping_toxics_of_one_kind_on_one_link_are_an_error(tmp_path: Path) -> None:
    text = steps(
        "{name: slow, at: 5s, for: 10s, fault: {latency: {link: web->mysql, latency: 100ms}}}",
        "{name: slower, at: 6s, for: 2s, fault: {latency: {link: web->mysql, latency: 1s}}}",
    ) + "links:\n  - {from: web, to: mysql}\n"
    one(tmp_path, text, 23, "chaos[1].at", "hits link web->mysql while step 'slow' holds it")


def test_16_overlapping_windows_on_different_targets_are_fine(tmp_path: Path) -> None:
    text = steps(
        "{name: freeze, at: 5s, for: 10s, fault: {pause: web-1}}",
        "{name: slow, at: 5s, for: 10s, fault: {latency: {link: web->mysql, latency: 100ms}}}",
        "{name: bandwidth, at: 5s, for: 10s, fault: {bandwidth: {link: web->mysql, rate: 10}}}",
        "{name: cut, at: 5s, for: 10s, fault: {partition: {target: web-2, peers: [redis]}}}",
    ) + "links:\n  - {from: web, to: mysql}\n"
    valid(tmp_path, text)


def test_16_count_above_the_replicas_is_an_error(tmp_path: Path) -> None:
    text = edit("{kill: web-1}", "{pause: {target: {service: web, count: 10}}}")
    one(
        tmp_path,
        text,
        22,
        "chaos[0].fault.pause.target.count",
        "count: 10 but 'web' has 3 replicas (use at most 3, or pick: all)",
    )


def test_16_session_continuity_with_file_sessions_is_a_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    valid(tmp_path, edit("sessions: redis", "sessions: files"), warnings=warnings)
    assert warnings == [
        f"{tmp_path}/topology.yaml:24: assertions[0].session_continuity: warning: 'web' keeps "
        "sessions in files on each of its 3 nodes and no LB in front is sticky, so sessions are "
        "lost whenever a request lands on another node: expected to fail (use sessions: redis, "
        "or cookie: true on the haproxy)"
    ]
    sticky = edit("sessions: redis", "sessions: files").replace(
        "    backends: web\n", "    backends: web\n    cookie: true\n"
    )
    warnings.clear()
    valid(tmp_path, sticky, warnings=warnings)
    assert warnings == []


def test_16_a_warning_is_printed_and_does_not_fail_validate(tmp_path: Path) -> None:
    path = write(tmp_path, edit("sessions: redis", "sessions: files"))
    code, out, err = _cli("validate", str(path))
    assert code == 0 and "1 warning" in out
    [line] = err.strip().splitlines()
    assert line.startswith(f"{path}:24: assertions[0].session_continuity: warning: ")


def test_16_stages_with_zero_users_are_an_error(tmp_path: Path) -> None:
    text = edit(
        "  users: 20\n  spawn_rate: 20\n  duration: 30s\n",
        "  stages:\n    - {duration: 20s, users: 0}\n    - {duration: 20s, users: 0}\n",
    )
    one(tmp_path, text, 17, "load", "every stage has users: 0, so no load would run")


def test_16_a_stage_ramping_down_to_zero_is_fine(tmp_path: Path) -> None:
    text = edit(
        "  users: 20\n  spawn_rate: 20\n  duration: 30s\n",
        "  stages:\n    - {duration: 20s, users: 5}\n    - {duration: 20s, users: 0}\n",
    )
    topo = valid(tmp_path, text)
    assert (topo.load.users, topo.load.duration) == (5, 40)


def test_16_load_settings_the_stages_override_are_an_error(tmp_path: Path) -> None:
    text = edit("  spawn_rate: 20\n", "  stages:\n    - {duration: 20s, users: 5}\n")
    one(tmp_path, text, 17, "load", "the load's duration and users come from the stages")


@pytest.mark.parametrize("value", ["0s", "0", "500ms"])
def test_16_a_load_duration_of_0_is_an_error(tmp_path: Path, value: str) -> None:
    one(tmp_path, edit("duration: 30s", f"duration: {value}"), 20, "load.duration", "use at least 1s")


@pytest.mark.parametrize("where", ["/", "../..", "."])
def test_16_config_that_is_no_file_is_an_error(tmp_path: Path, where: str) -> None:
    text = edit("    backends: web\n", f"    backends: web\n    config: '{where}'\n")
    one(tmp_path, text, 9, "services.lb.config", "is a directory, not a regular file")


def test_16_config_outside_the_topology_s_directory_is_a_warning(tmp_path: Path) -> None:
    text = edit("    backends: web\n", "    backends: web\n    config: /etc/passwd\n")
    warnings: list[str] = []
    valid(tmp_path, text, warnings=warnings)
    assert warnings == [
        f"{tmp_path}/topology.yaml:9: services.lb.config: warning: /etc/passwd is outside the "
        f"topology's directory {tmp_path}: it is copied into the containers, and the topology "
        "will not run from another checkout (copy the file next to the topology file)"
    ]


@pytest.mark.parametrize("where", ["/", "../..", "/etc"])
def test_16_an_app_that_is_no_php_app_is_an_error(tmp_path: Path, where: str) -> None:
    text = edit("    sessions: redis\n", f"    sessions: redis\n    app: '{where}'\n")
    one(tmp_path, text, 14, "services.web.app", "has no index.php or public/index.php")


def test_16_an_app_directory_with_index_php_is_fine(tmp_path: Path) -> None:
    (tmp_path / "app" / "public").mkdir(parents=True)
    (tmp_path / "app" / "public" / "index.php").write_text("<?php\n")
    topo = valid(tmp_path, edit("    sessions: redis\n", "    sessions: redis\n    app: app\n"))
    plan = plan_of(tmp_path, topo)
    assert plan.container("web-1").dirs == {"/srv/app": str(tmp_path / "app")}


def test_16_duplicate_links_are_an_error(tmp_path: Path) -> None:
    text = BASE + "links:\n  - {from: web, to: mysql}\n  - {from: web, to: mysql}\n"
    one(
        tmp_path,
        text,
        28,
        "links[1]",
        "a second link web->mysql would put two proxies on one connection",
    )


# ---------------------------------------------------------------- what validation guarantees


def test_every_accepted_input_of_this_file_builds_a_plan(tmp_path: Path) -> None:
    """The valid variants above, together: make_plan never fails on what validate accepted."""
    for text in (BASE, service("  prom: {kind: prometheus}"), _many(10)):
        plan_of(tmp_path, valid(tmp_path, text))



def test_8_the_run_s_own_check_names_the_line_of_load_url(tmp_path: Path) -> None:
    """Behind validation, the run checks the URL again against the network it got (with
    --allow-external-target it may pass validation): the line is load.url's, not 1."""
    from dataclasses import replace

    from harness.plan.targets import check_load_url

    path = write(tmp_path, edit("  users: 20", "  url: 'http://8.8.8.8'\n  users: 20"))
    topo = load_topology(path, allow_external_target=True)
    plan = replace(plan_of(tmp_path, topo), load_url="http://8.8.8.8")
    with pytest.raises(SpecError) as info:
        check_load_url(plan, None, str(path))
    assert info.value.problems[0].startswith(f"{path}:18: load.url: http://8.8.8.8 is neither")


def test_the_spec_knows_what_the_chaos_code_can_restart_and_needs() -> None:
    """semantic.py mirrors two tables of harness/chaos (which it must not import)."""
    from harness.chaos.process_kill import RESTART
    from harness.chaos.toxic import REQUIRED
    from harness.spec.semantic import RESTARTABLE, TOXIC_REQUIRED

    assert set(RESTARTABLE) == set(RESTART)
    assert TOXIC_REQUIRED == REQUIRED


@pytest.mark.parametrize(
    ("fault", "field", "phrase"),
    [
        ("{process_kill: {target: web-1, process: redis-server}}", "process", "cannot start 'redis-server' again"),
        ("{process_kill: {target: web-1, process: haproxy}}", "process", "no haproxy runs in the web containers of 'web'"),
        ("{latency: {link: web->mysql}}", "latency", "latency needs latency (add e.g. latency: 300ms)"),
        ("{latency: {link: web->mysql, latency: 1s, rate: 5}}", "rate", "latency takes no rate"),
        ("{pause: {target: {service: web, pick: all, count: 2}}}", "target.count", "pick: all takes every instance"),
        ("{pause: {target: {service: web, count: 1, percent: 50}}}", "target.percent", "count and percent both say how many"),
    ],
)
def test_faults_the_run_would_refuse_after_the_stack_is_up(
    tmp_path: Path, fault: str, field: str, phrase: str
) -> None:
    text = edit("{kill: web-1}", fault) + "links:\n  - {from: web, to: mysql}\n"
    kind = fault[1:].split(":")[0]
    one(tmp_path, text, 22, f"chaos[0].fault.{kind}.{field}", phrase)


def test_a_fault_on_the_run_s_prometheus_is_an_error(tmp_path: Path) -> None:
    text = service("  prometheus: {kind: prometheus}").replace("{kill: web-1}", "{pause: prometheus}")
    one(tmp_path, text, 23, "chaos[0].fault.pause.target", "is the run's Prometheus")
