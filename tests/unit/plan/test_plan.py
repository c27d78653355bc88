"""Topology → plan: addresses, start order, rendered configs, secrets. No Docker."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from harness.plan.build import levels, make_plan, with_prometheus
from harness.plan.model import ScrapeTarget
from harness.spec.loader import load_topology

REPO = Path(__file__).resolve().parents[3]
SUBNET = "10.213.9.0/24"


def plan_of(name: str, **kw):  # type: ignore[no-untyped-def]
    topo = load_topology(REPO / "topologies" / name)
    return make_plan(topo, "r1", SUBNET, [ScrapeTarget("locust", "10.213.9.1:9646", "locust")], **kw)


def test_every_container_gets_a_distinct_address_inside_the_subnet_and_the_vip_is_free() -> None:
    plan = plan_of("ha.yaml")
    ips = [c.ip for c in plan.containers]
    assert len(ips) == len(set(ips))
    net = ipaddress.IPv4Network(SUBNET)
    assert all(ipaddress.IPv4Address(ip) in net for ip in ips)
    assert plan.gateway == "10.213.9.1" and plan.gateway not in ips
    assert plan.vips == {"lb": "10.213.9.200"} and "10.213.9.200" not in ips
    assert plan.load_url == "http://10.213.9.200"


def test_start_order_puts_data_before_web_before_load_balancers() -> None:
    order = [[c.instance for c in level] for level in plan_of("ha.yaml").levels]
    flat = [i for level in order for i in level]
    assert flat.index("mysql") < flat.index("web-1") < flat.index("lb-1")
    assert flat.index("redis") < flat.index("web-3") < flat.index("lb-2")
    assert {"lb-1", "lb-2"} == set(order[-1])


def test_levels_follow_links_through_toxiproxy(tmp_path: Path) -> None:
    topo = with_prometheus(load_topology(REPO / "topologies/ha.yaml"))  # links: web -> mysql
    order = levels(topo)
    pos = {name: i for i, level in enumerate(order) for name in level}
    assert pos["mysql"] < pos["toxiproxy"] < pos["web"] < pos["lb"]
    plan = make_plan(topo, "r1", SUBNET, [])
    proxy = plan.container("toxiproxy")
    web = plan.container("web-1")
    assert web.env["DB_HOST"] == proxy.ip and web.env["DB_PORT"] == "10000"
    assert plan.toxiproxy["web->mysql"] == (f"http://{proxy.ip}:8474", "web_to_mysql")


def test_haproxy_config_lists_every_backend_with_the_topology_check_settings() -> None:
    plan = plan_of("ha.yaml")
    cfg = plan.container("lb-1").files["/etc/haproxy/haproxy.cfg"]
    for i in (1, 2, 3):
        assert f"server web-{i} {plan.container(f'web-{i}').ip}:80 check" in cfg
    assert "default-server inter 500ms fall 2 rise 2" in cfg
    assert "option redispatch" in cfg and "retries 1" in cfg
    assert "use-service prometheus-exporter" in cfg


def test_keepalived_master_has_higher_priority_and_peers_are_unicast() -> None:
    plan = plan_of("ha.yaml")
    one = plan.container("lb-1").files["/etc/keepalived/keepalived.conf"]
    two = plan.container("lb-2").files["/etc/keepalived/keepalived.conf"]
    assert "state MASTER" in one and "priority 255" in one  # the owner: the VIP at once
    assert "state BACKUP" in two and "priority 140" in two
    assert plan.container("lb-2").ip in one and plan.container("lb-1").ip in two
    assert "10.213.9.200/24" in one and "pgrep -x haproxy" in one


def test_prometheus_scrapes_every_exporter_with_the_run_label() -> None:
    plan = plan_of("ha.yaml")
    cfg = plan.container("prometheus").files["/etc/prometheus/prometheus.yml"]
    assert cfg.count('run: "r1"') == len(plan.scrape)
    jobs = {t.job for t in plan.scrape}
    assert {"locust", "haproxy", "redis", "mysqld"} <= jobs


def test_secrets_are_generated_per_run_and_reach_the_app() -> None:
    a, b = plan_of("ha.yaml"), plan_of("ha.yaml")
    assert a.secrets["db_password"] != b.secrets["db_password"]
    assert len(a.secrets["db_password"]) >= 16
    web = a.container("web-2")
    assert web.env["DB_PASSWORD"] == a.secrets["db_password"]
    assert f"auth={a.secrets['redis_password']}" in web.files["/etc/php/8.2/fpm/conf.d/99-harness.ini"]


def test_file_sessions_render_the_files_handler() -> None:
    ini = plan_of("ha-file-sessions.yaml").container("web-1").files["/etc/php/8.2/fpm/conf.d/99-harness.ini"]
    assert "session.save_handler = files" in ini and "redis" not in ini


def test_nginx_fastcgi_lb_passes_straight_to_the_fpm_pool() -> None:
    plan = plan_of("nginx-lb.yaml")
    cfg = plan.container("lb").files["/etc/nginx/nginx.conf"]
    assert "fastcgi_pass app;" in cfg and "least_conn;" in cfg
    for i in (1, 2, 3):
        assert f"server {plan.container(f'fpm-{i}').ip}:9000 weight=1 max_fails=1 fail_timeout=5s;" in cfg
    pool = plan.container("fpm-1").files["/etc/php/8.2/fpm/pool.d/www.conf"]
    assert "listen = 0.0.0.0:9000" in pool and "pm = dynamic" in pool


def test_user_config_template_is_rendered_with_the_topology_addresses(tmp_path: Path) -> None:
    (tmp_path / "haproxy.cfg.j2").write_text(
        "backend app\n{% for i in services.web.instances %}  server {{ i.name }} {{ i.ip }}:80\n{% endfor %}")
    src = (REPO / "topologies/sticky-sessions.yaml").read_text().replace(
        "    backends: web\n", "    backends: web\n    config: haproxy.cfg.j2\n", 1)
    (tmp_path / "t.yaml").write_text(src)
    plan = make_plan(load_topology(tmp_path / "t.yaml"), "r1", SUBNET, [], base_dir=tmp_path)
    cfg = plan.container("lb").files["/etc/haproxy/haproxy.cfg"]
    assert cfg.splitlines()[1] == f"  server web-1 {plan.container('web-1').ip}:80"


@pytest.mark.parametrize("name", ["ha.yaml", "nginx-lb.yaml", "nginx-ha.yaml", "sticky-sessions.yaml"])
def test_every_shipped_topology_plans(name: str) -> None:
    plan = plan_of(name)
    assert plan.prometheus_url.endswith(":9090")
    assert all(c.wait.kind != "none" for c in plan.containers if c.builtin_image)


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:8080", True),
    ("http://localhost", True),
    ("http://10.213.9.77/app", True),  # inside the run's own network
    ("http://web-2", True),  # a container of the run
    ("http://10.0.0.5", False),
    ("http://example.org", False),
])
def test_load_url_must_stay_on_the_run_network_or_loopback(url: str, allowed: bool) -> None:
    from dataclasses import replace

    from harness.errors import SpecError
    from harness.plan.targets import check_load_url

    plan = replace(plan_of("ha.yaml"), load_url=url)
    if allowed:
        assert check_load_url(plan, None, "t.yaml") is None
    else:
        with pytest.raises(SpecError, match="--allow-external-target"):
            check_load_url(plan, None, "t.yaml")
        note = check_load_url(plan, "our staging LB", "t.yaml")
        assert note is not None and "our staging LB" in note
