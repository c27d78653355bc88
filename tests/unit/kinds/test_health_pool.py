"""The web node answers the LB's liveness check from a PHP-FPM pool of its own (issue 13): a
slow database that keeps every app worker busy must not make the check queue behind traffic,
time out, and eject every node at once (the ha.yaml flake: six 503s with no backend UP)."""

from __future__ import annotations

import re
from pathlib import Path

from harness.kinds.web import HEALTH_POOL, HEALTH_SOCKET
from harness.plan.build import make_plan
from harness.plan.model import ScrapeTarget
from harness.spec.loader import load_topology

REPO = Path(__file__).resolve().parents[3]
APP = REPO / "images" / "web" / "app" / "public" / "index.php"


def plan_of(path: Path):  # type: ignore[no-untyped-def]
    topo = load_topology(path)
    return make_plan(topo, "r1", "10.213.9.0/24", [ScrapeTarget("locust", "10.213.9.1:9646", "l")])


def location(conf: str, path: str) -> str:
    """The body of Nginx's `location = PATH { ... }` block."""
    m = re.search(r"location = " + re.escape(path) + r" \{(.*?)\}", conf, re.S)
    assert m, f"no exact location for {path}"
    return m.group(1)


def test_liveness_is_served_by_its_own_pool_never_the_app_pool() -> None:
    web = plan_of(REPO / "topologies" / "ha.yaml").container("web-1")
    nginx = web.files["/etc/nginx/conf.d/app.conf"]
    assert f"fastcgi_pass unix:{HEALTH_SOCKET};" in location(nginx, "/health/live")
    pool = web.files[HEALTH_POOL]
    app_pool = web.files["/etc/php/8.2/fpm/pool.d/www.conf"]
    assert f"listen = {HEALTH_SOCKET}" in pool and f"listen = {HEALTH_SOCKET}" not in app_pool
    assert "[health]" in pool and "pm = static" in pool and 'env[NODE_NAME] = "web-1"' in pool
    # every other path still reaches the app's pool
    assert "fastcgi_pass unix:/run/php/php8.2-fpm.sock;" in nginx.split("location / {")[1]


def test_ha_checks_liveness_so_a_slow_database_cannot_eject_every_node() -> None:
    cfg = (
        plan_of(REPO / "topologies" / "ha.yaml").container("lb-1").files["/etc/haproxy/haproxy.cfg"]
    )
    assert "option httpchk GET /health/live" in cfg


def test_the_app_answers_live_without_asking_a_dependency_and_ready_with_every_one() -> None:
    php = APP.read_text()
    live = php.split("case 'GET /health/live':", 1)[1].split("case ", 1)[0]
    assert "reply(200" in live and "db()" not in live and "Redis" not in live
    ready = php.split("case 'GET /health/ready':", 1)[1].split("case 'POST /login'", 1)[0]
    assert "case 'GET /health':" in ready and "db()->query('SELECT 1')" in ready
