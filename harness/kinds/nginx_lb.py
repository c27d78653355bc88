"""Nginx as the load balancer: the classic upstream block with passive health checks
(`max_fails`/`fail_timeout`: open-source Nginx has no active checks and exposes no per-peer
state). The peers' state lives in a shared `zone`, so the whole LB ejects a peer at once, not
each worker on its own, and the error log (stderr, `notice`) says when: `upstream server
temporarily disabled` (warn) and `start worker processes` (notice: every peer is fresh again),
read by harness/watch/logs.py. HTTP to web nodes or `fastcgi_pass` straight to a PHP-FPM pool.
stub_status + Debian's nginx exporter on :9113.

With `check:` the container also runs active health checks (images/lb/nginx-upstreams.sh, read
from CHECKS): a server failing `fall` checks in a row gets `down` on its line and Nginx reloads;
the script logs `nginx-check: Server app/<instance> is DOWN|UP` once the new workers serve."""

from __future__ import annotations

import math
import re

from harness.kinds import keepalived
from harness.kinds.base import Context, apply_overrides, render
from harness.kinds.descriptor import Descriptor, Drain, Exporter, LogLines
from harness.plan.model import ContainerPlan, RunPlan, Wait
from harness.spec.models import NginxLBService

IMAGE = "lb"
CONFIG_PATH = "/etc/nginx/nginx.conf"
EXPORTER_PORT = 9113
EXPORTER = Exporter("nginx", EXPORTER_PORT)  # Debian's nginx exporter over stub_status
CHECKS = "/etc/harness/nginx-check"  # `path inter timeout fall rise`, then `instance ip port` lines
RELOAD_BUDGET = 1.0  # the lock, the rewrite, `nginx -t`, the reload and the new workers starting


def checks(svc: NginxLBService, backends: list[tuple[str, str, int]], port: int) -> str:
    c = svc.check
    assert c is not None
    head = f"{c.path} {c.interval:g} {c.timeout:g} {c.fall} {c.rise}\n"
    return head + "".join(f"{name} {ip} {port}\n" for name, ip, _ in backends)


def containers(ctx: Context, name: str, svc: NginxLBService) -> list[ContainerPlan]:
    port = 9000 if svc.protocol == "fastcgi" else 80
    backends = [(i, ctx.ips[i], svc.weights.get(i, 1)) for i in ctx.instances(svc.backends)]
    cfg = render("nginx-lb.conf.j2", svc=svc, backends=backends, port=port)
    out = []
    for idx, inst in enumerate(ctx.instances(name)):
        files = {CONFIG_PATH: cfg, "/etc/harness/nginx-lb": "nginx\n"}
        if svc.check is not None:
            files[CHECKS] = checks(svc, backends, port)
        caps: list[str] = []
        if svc.keepalived:
            files.update(keepalived.files(ctx, name, svc.keepalived, idx, process="nginx"))
            caps = keepalived.CAPS
        plan = ContainerPlan(
            instance=inst,
            service=name,
            kind="nginx-lb",
            image=svc.image or IMAGE,
            builtin_image=svc.image is None,
            ip=ctx.ips[inst],
            files=files,
            cap_add=caps,
            wait=Wait("http", f"http://{ctx.ips[inst]}:8080/stub_status", 60),
        )
        out.append(apply_overrides(plan, svc, ctx, CONFIG_PATH))
        ctx.metrics_targets.append(EXPORTER.target(ctx.ips[inst], inst))
    return out


def ejection_bound(svc: NginxLBService) -> float:
    """Passive checks: a dead peer is skipped after `max_fails` failed attempts within
    `fail_timeout`; a request that hits it waits up to `timeout_connect` before the next peer.
    Active checks (`check:`), which eject a peer with no traffic too: images/lb/nginx-upstreams.sh
    probes, then sleeps `inter`. At worst a check passed just before the node stopped answering,
    then come `fall` rounds of `inter` asleep plus a failing check that runs the whole `timeout`
    (a stopped node's IP answers nothing, not even a reset): fall x (inter + timeout), the loop's
    exact worst case. On top, one more `inter` for the phase: the node stops answering only some
    time after the fault is journaled (docker stop), and each round also pays a curl and a sleep
    forked on a busy machine; and RELOAD_BUDGET for what follows the last failed check before
    the DOWN line (the lock, free unless another server changed at the same moment; `nginx -t`,
    the reload, the new workers). Checks that never eject still fail it."""
    c = svc.check
    if c is not None:
        return c.fall * (c.interval + c.timeout) + c.interval + RELOAD_BUDGET
    return svc.timeout_connect * max(1, svc.max_fails)


SERVER_LINE = re.compile(r"^\s*server\s+([^\s;]+)([^;]*);", re.MULTILINE)
TIME_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DEFAULT_MAX_FAILS, DEFAULT_FAIL_TIMEOUT = 1, 10.0  # Nginx's own defaults


def _seconds(text: str) -> float:
    """An Nginx time in whole seconds (`10`, `10s`, `1m30s`)."""
    total, rest = 0.0, text.strip()
    for num, unit in re.findall(r"(\d+)([a-z]*)", rest):
        if unit not in TIME_UNITS:
            raise ValueError(f"not an nginx time in seconds: {text!r}")
        total += int(num) * TIME_UNITS[unit]
    return total


def passive_checks(config: str) -> dict[str, tuple[int, float]]:
    """`server ADDRESS ... max_fails=N fail_timeout=T;` lines of an nginx.conf (the rendered
    template or the user's own): address → (max_fails, fail_timeout in seconds), with Nginx's
    defaults for what a line leaves out. `listen`/`server_name` lines are not `server` lines
    and `server {` blocks have no address before a `;`."""
    out: dict[str, tuple[int, float]] = {}
    for m in SERVER_LINE.finditer(config):
        address, params = m.group(1), m.group(2)
        if "{" in address or "{" in params:
            continue
        max_fails, fail_timeout = DEFAULT_MAX_FAILS, DEFAULT_FAIL_TIMEOUT
        for param in params.split():
            key, _, value = param.partition("=")
            try:
                if key == "max_fails":
                    max_fails = int(value)
                elif key == "fail_timeout":
                    fail_timeout = _seconds(value)
            except ValueError:
                continue
        out[address] = (max_fails, float(math.ceil(fail_timeout)))
    return out


def upstreams(plan: RunPlan, lb: ContainerPlan) -> tuple[dict[str, str], dict[str, float]]:
    """Upstream address → backend instance (every container of the run by IP, and each `server`
    line's address), and backend → `fail_timeout`, read from the nginx.conf the container really
    gets (the rendered template or the user's own)."""
    by_ip = {c.ip: c.instance for c in plan.containers}
    names = set(by_ip.values())
    out, fail_timeout = dict(by_ip), {}
    for address, (_, timeout) in passive_checks(lb.files.get(CONFIG_PATH, "")).items():
        host = address.rsplit(":", 1)[0] if address.count(":") == 1 else address
        name = by_ip.get(host) or (host if host in names else address)
        out[address] = name
        fail_timeout[name] = timeout
    return out, fail_timeout


def _ejection(svc: NginxLBService) -> tuple[float, str]:
    c = svc.check
    if c is not None:
        how = (
            f"active: fall {c.fall} x (inter {c.interval:g}s + timeout {c.timeout:g}s)"
            f" + inter {c.interval:g}s (phase) + reload {RELOAD_BUDGET:g}s"
        )
    else:
        how = f"passive: max_fails {svc.max_fails} x connect timeout {svc.timeout_connect:g}s"
    return ejection_bound(svc), how


DESCRIPTOR = Descriptor(
    image=IMAGE,
    ports={"http": 80, "status": 8080, "metrics": EXPORTER_PORT},
    exporter=EXPORTER,
    log=LogLines(
        backend=(re.compile(r"nginx-check: Server (\S+)/(\S+) is (UP|DOWN)"),),
        disabled=(
            re.compile(
                r'upstream server temporarily disabled\b.*?\bupstream: "(?:[a-z]+://)?'
                r'(\[[^\]]*\]|[^:/"]+)(?::(\d+))?'
            ),
        ),
        started=(re.compile(r"\[notice\] \d+#\d+: start worker processes\b"),),
    )
    + keepalived.LOG,
    tracks="nginx",
    ejection=_ejection,
    upstreams=upstreams,
    # `server 10.x.y.z:80 ...;` lines of the upstream block; any positive weight
    drain=Drain(
        "reload", CONFIG_PATH, re.compile(r"^\s*server\s+([0-9.]+)[:;\s]", re.MULTILINE), 100
    ),
)
