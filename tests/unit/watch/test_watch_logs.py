"""The LB log watcher: Nginx's passive-check ejections and their `fail_timeout` return, process
restarts, and following a container that stops and runs again without handling a line twice."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from harness.kinds import nginx_lb
from harness.kinds.base import render
from harness.kinds.nginx_lb import upstreams as nginx_upstreams
from harness.plan.build import make_plan
from harness.spec.loader import load_topology
from harness.spec.models import NginxLBService
from harness.watch import Watchers
from harness.watch.logs import LogWatcher, parse_ts
from tests.fakes import FakeContainer, FakeExporter

T0 = "2026-11-22T02:16:56.123456789Z"
UPSTREAMS = {"10.213.5.4": "web-1", "10.213.5.5": "web-2"}


def nginx(ts: str, level: str, what: str, upstream: str) -> str:
    return (
        f"{ts} 2026/11/22 02:16:56 [{level}] 7#7: *14 {what} while connecting to upstream, "
        f'client: 10.213.5.1, server: , request: "GET /whoami HTTP/1.1", upstream: "{upstream}", '
        f'host: "10.213.5.200"'
    )


def disabled(ts: str, upstream: str = "http://10.213.5.4:80/whoami") -> str:
    return nginx(ts, "warn", "upstream server temporarily disabled", upstream)


def test_nginx_disabled_line_is_the_lb_ejecting_the_backend() -> None:
    g = FakeExporter()
    w = LogWatcher(None, "lb-1", g, 0, upstreams=UPSTREAMS, fail_timeout=3)
    w.handle(
        nginx(T0, "error", "connect() failed (111: Connection refused)", "http://10.213.5.4:80/x")
    )
    assert g.sets == [] and w.servers == {}  # the failed attempt alone ejects nothing
    w.handle(disabled(T0))
    ts = parse_ts(T0)
    assert g.of("backend_state") == [(("lb-1", "web-1", "DOWN"), pytest.approx(ts))]
    assert g.of("backend_up") == [(("lb-1", "web-1"), 0)]
    assert w.states() == {"web-1": "DOWN"}
    assert w.events == [(pytest.approx(ts), "backend", "web-1", "DOWN")]


def test_nginx_backend_is_up_again_when_fail_timeout_has_passed_since_its_last_ejection() -> None:
    g = FakeExporter()
    w = LogWatcher(None, "lb-1", g, 0, upstreams=UPSTREAMS, fail_timeout=3)
    first, again = parse_ts(T0), parse_ts("2026-11-22T02:16:57.400000000Z")
    w.handle(disabled(T0))
    w.handle(disabled("2026-11-22T02:16:57.400000000Z"))  # an attempt already under way failed
    assert len(g.of("backend_state")) == 1  # still the one ejection
    # Nginx skips the peer while now - checked <= fail_timeout, in whole seconds
    up_at = math.floor(again) + 3 + 1
    w.expire(up_at - 0.01)
    assert w.states() == {"web-1": "DOWN"}
    w.expire(up_at + 5)
    assert w.states() == {"web-1": "UP"}
    assert g.of("backend_state")[-1] == (("lb-1", "web-1", "UP"), up_at)
    assert g.of("backend_up")[-1] == (("lb-1", "web-1"), 1)
    assert up_at - first > 3


def test_a_later_line_also_brings_the_backend_back_and_a_new_ejection_counts_again() -> None:
    g = FakeExporter()
    w = LogWatcher(None, "lb-1", g, 0, upstreams=UPSTREAMS, fail_timeout={"web-1": 2})
    w.handle(disabled(T0))
    up_at = math.floor(parse_ts(T0)) + 3
    w.handle(disabled("2026-11-22T02:17:00.500000000Z"))  # still dead when tried again
    states = [(labels[2], v) for labels, v in g.of("backend_state")]
    assert states == [
        ("DOWN", pytest.approx(parse_ts(T0))),
        ("UP", up_at),
        ("DOWN", pytest.approx(parse_ts("2026-11-22T02:17:00.500000000Z"))),
    ]


def test_fastcgi_and_unknown_upstreams() -> None:
    g = FakeExporter()
    w = LogWatcher(None, "lb-1", g, 0, upstreams=UPSTREAMS)
    w.handle(disabled(T0, "fastcgi://10.213.5.5:9000"))
    w.handle(disabled(T0.replace("56.1", "56.2"), "http://10.9.9.9:8080/x"))
    assert w.states() == {"web-2": "DOWN", "10.9.9.9:8080": "DOWN"}


def test_a_restarted_lb_process_sees_every_server_up_again() -> None:
    g = FakeExporter()
    w = LogWatcher(None, "lb-1", g, 0, upstreams=UPSTREAMS, fail_timeout=30)
    w.handle(disabled(T0))
    w.handle(
        "2026-11-22T02:16:58.000000000Z 2026/11/22 02:16:58 [notice] 41#41: start worker processes"
    )
    assert w.states() == {"web-1": "UP"}
    assert g.of("backend_state")[-1] == (
        ("lb-1", "web-1", "UP"),
        pytest.approx(parse_ts("2026-11-22T02:16:58Z")),
    )
    w.expire(parse_ts(T0) + 60)  # the old ejection's return does not come back
    assert len(g.of("backend_state")) == 2
    h = LogWatcher(None, "lb-2", FakeExporter(), 0)
    h.handle(f"{T0} [WARNING]  (9) : Server app/web-3 is DOWN, reason: Layer4 connection problem")
    h.handle("2026-11-22T02:17:00Z [NOTICE]   (6) : New worker (31) forked")
    assert h.states() == {"web-3": "UP"}
    assert (parse_ts("2026-11-22T02:17:00Z"), "process", "lb-2", "started") in h.events


def test_a_line_handled_once_is_not_handled_again() -> None:
    g = FakeExporter()
    w = LogWatcher(None, "lb-1", g, 0)
    line = "2026-11-22T02:16:57.5Z Sun Nov 22 02:16:57 2026: (VI_1) Entering MASTER STATE"
    w.handle(line)
    w.handle(line)
    assert len(g.of("keepalived_state")) == 1 and len(w.events) == 1


# ------------------------------------------------------------------ the config it reads


def test_passive_checks_are_read_from_the_rendered_template() -> None:
    svc = NginxLBService.model_validate(
        {"kind": "nginx-lb", "backends": "web", "max_fails": 0, "fail_timeout": "2500ms"}
    )
    cfg = render("nginx-lb.conf.j2", svc=svc, backends=[("web-1", "10.0.0.4", 1)], port=80)
    assert "error_log /dev/stderr notice;" in cfg and "zone app" in cfg
    assert nginx_lb.passive_checks(cfg) == {"10.0.0.4:80": (0, 3.0)}
    own = "upstream a {\n server 10.0.0.9;\n server 10.0.0.8:81 fail_timeout=1m max_fails=3;\n}\nserver {\n listen 80;\n}"
    assert nginx_lb.passive_checks(own) == {"10.0.0.9": (1, 10.0), "10.0.0.8:81": (3, 60.0)}


def test_watchers_give_each_nginx_lb_its_upstreams_and_fail_timeout(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(
        "version: 1\nname: n\nservices:\n"
        "  lb: {kind: nginx-lb, replicas: 2, backends: web, fail_timeout: 4s, keepalived: {vip: auto}}\n"
        "  web: {kind: web, replicas: 2, sessions: files, depends_on: [mysql]}\n"
        "  mysql: {kind: mariadb}\n"
        "assertions:\n  - error_budget: {max_error_ratio: 0.01}\n"
    )
    plan = make_plan(load_topology(tmp_path / "t.yaml"), "r1", "10.213.9.0/24", [])
    lb = plan.container("lb-1")
    upstreams, fail_timeout = nginx_upstreams(plan, lb)
    web1 = plan.container("web-1")
    assert upstreams[web1.ip] == "web-1" and upstreams[f"{web1.ip}:80"] == "web-1"
    assert fail_timeout == {"web-1": 4.0, "web-2": 4.0}
    w = Watchers(plan, {}, FakeExporter(), 0, 60)
    [nginx_watcher] = [x for x in w.logs if x.instance == "lb-1"]
    assert (
        nginx_watcher.upstreams[web1.ip] == "web-1" and nginx_watcher.fail_timeout == fail_timeout
    )


# ------------------------------------------------------------------ following a container


def wait(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_watcher_follows_the_container_through_a_restart_without_repeating_lines() -> None:
    g = FakeExporter()
    c = FakeContainer("lb-1", started="2026-11-22T02:16:00Z")
    a = f"{T0} [WARNING]  (9) : Server app/web-1 is DOWN, reason: x"
    b = "2026-11-22T02:16:57.000000000Z (VI_1) Entering BACKUP STATE"
    c.streams.append([a, b])
    w = LogWatcher(c, "lb-1", g, parse_ts("2026-11-22T02:16:50Z"))
    w.start()
    try:
        wait(c.ended.is_set)
        wait(lambda: len(w.events) == 2)
        # it comes back: the new stream repeats the last second, then goes on
        c.attrs["State"]["StartedAt"] = "2026-11-22T02:17:10.000000000Z"
        d = "2026-11-22T02:17:11.000000000Z (VI_1) Entering MASTER STATE"
        c.streams.append([b, d])
        c.ended.clear()
        c.status = "running"
        w.wake()
        wait(c.ended.is_set)
        wait(lambda: any(e[3] == "MASTER" for e in w.events))
    finally:
        w.stop()
    assert c.log_calls[0]["since"] == pytest.approx(parse_ts("2026-11-22T02:16:50Z"))
    assert c.log_calls[1]["since"] == pytest.approx(parse_ts(b[:30]) - 1.0)
    assert [e[3] for e in w.events if e[1] == "keepalived"] == ["BACKUP", "MASTER"]
    # the container started afresh: its HAProxy sees web-1 UP from that instant
    assert (("lb-1", "web-1", "UP"), pytest.approx(parse_ts("2026-11-22T02:17:10Z"))) in g.of(
        "backend_state"
    )
    assert w.attaches == 2
