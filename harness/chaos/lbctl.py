"""Taking a backend out of, and back into, the load balancers in front of it, through each LB's
own mechanism: HAProxy's runtime API on its admin socket (`set server app/web-1 state drain`,
then `maint`, then `ready`; `set weight`), Nginx's `down`/`weight=` on the upstream's server
lines plus a graceful reload (old workers finish what they serve, then exit).

Which LB balances which instances is read from the LB's rendered config in the plan (HAProxy
`server web-1 …` lines, Nginx `server 10.x.y.z:80 …` lines), so it also holds for a user's own
`config:` that keeps the template's backend name and admin socket. The admin socket is reached
through `/proc/<pid>/root` of the LB container: the engine runs on this host (partitions enter
namespaces the same way), and the LB image carries no socket client."""

from __future__ import annotations

import re
import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from harness.errors import InfrastructureError
from harness.plan.model import RunPlan

STATS_SOCKET = "/run/haproxy/admin.sock"
HAPROXY_CONFIG = "/etc/haproxy/haproxy.cfg"
NGINX_CONFIG = "/etc/nginx/nginx.conf"
NGINX_STABLE = "/etc/nginx/nginx.conf.harness-stable"  # the config before the first change
BACKEND = "app"  # the template's backend (harness/kinds/templates/haproxy.cfg.j2)
HAPROXY_SERVER = re.compile(r"^\s*server\s+(\S+)\s+(\S+)", re.MULTILINE)
NGINX_SERVER = re.compile(r"^(\s*server\s+)([0-9.]+)(:\d+)?([^;{]*);", re.MULTILINE)
TOP_WEIGHT = {"haproxy": 256, "nginx-lb": 100}  # HAProxy takes 0-256; Nginx any positive


@dataclass(frozen=True)
class Lb:
    instance: str
    kind: str  # haproxy | nginx-lb
    servers: dict[str, str]  # backend instance -> the LB's name for it (HAProxy) or its IP


def lbs_in_front(plan: RunPlan, service: str) -> list[Lb]:
    """Every LB instance whose config routes to an instance of `service`."""
    mine = {c.instance: c.ip for c in plan.instances(service)}
    out = []
    for c in plan.containers:
        if c.kind == "haproxy":
            names = dict(HAPROXY_SERVER.findall(c.files.get(HAPROXY_CONFIG, "")))
            servers = {i: i for i in mine if i in names}
        elif c.kind == "nginx-lb":
            ips = {m.group(2) for m in NGINX_SERVER.finditer(c.files.get(NGINX_CONFIG, ""))}
            servers = {i: ip for i, ip in mine.items() if ip in ips}
        else:
            continue
        if servers:
            out.append(Lb(c.instance, c.kind, servers))
    return out


def canary_weights(share: float, stable: int, canaries: int, top: int) -> tuple[int, int]:
    """(weight of each stable node, weight of each canary) so the canaries together get
    `share` of the requests, within the LB's weight range."""
    ratio = share * stable / ((1 - share) * canaries)  # canary weight / stable weight
    if ratio <= 1:
        return top, max(1, round(top * ratio))
    return max(1, round(top / ratio)), top


# ---------------------------------------------------------------- HAProxy runtime API


def _pid(c: Container) -> int:
    c.reload()
    pid = int(c.attrs.get("State", {}).get("Pid") or 0)
    if not pid:
        raise InfrastructureError(f"{c.name} is not running: its runtime API cannot be reached")
    return pid


def haproxy(c: Container, command: str, timeout: float = 2.0) -> str:
    """One runtime API command; its answer (empty for a `set` that worked)."""
    path = f"/proc/{_pid(c)}/root{STATS_SOCKET}"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(command.encode() + b"\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    except OSError as exc:
        raise InfrastructureError(
            f"HAProxy runtime API of {c.name} ({STATS_SOCKET}) did not answer '{command}': {exc}"
        ) from None
    return data.decode(errors="replace").strip()


def haproxy_set(c: Container, command: str) -> None:
    answer = haproxy(c, command)
    if answer:
        raise InfrastructureError(f"HAProxy in {c.name} refused '{command}': {answer}")


def haproxy_servers(c: Container) -> dict[str, tuple[str, int]]:
    """server -> (status as `show stat` spells it: UP, DOWN, MAINT, DRAIN, …; current
    sessions) for the backend `app`."""
    text = haproxy(c, "show stat")
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise InfrastructureError(f"HAProxy in {c.name} answered 'show stat' with: {text[:200]}")
    head = lines[0][2:].split(",")
    px, sv, st, cur = (head.index(k) for k in ("pxname", "svname", "status", "scur"))
    out = {}
    for line in lines[1:]:
        f = line.split(",")
        if len(f) > max(px, sv, st, cur) and f[px] == BACKEND and f[sv] not in ("BACKEND",):
            out[f[sv]] = (f[st], int(f[cur] or 0))
    return out


# ---------------------------------------------------------------- Nginx


def _sh(c: Container, script: str) -> str:
    code, out = c.exec_run(["sh", "-c", script])
    text = out.decode(errors="replace").strip()
    if code != 0:
        raise InfrastructureError(f"in {c.name}: `{script[:80]}` failed: {text[-300:]}")
    return text


def nginx_rewrite(c: Container, down: set[str], weights: dict[str, int]) -> None:
    """The stable config with `down` on the server lines of the IPs in `down` and `weight=` set
    for those in `weights`, then a graceful reload (`nginx -t` first: a bad config keeps the
    old one serving)."""
    _sh(c, f"test -f {NGINX_STABLE} || cp -p {NGINX_CONFIG} {NGINX_STABLE}")
    stable = _sh(c, f"cat {NGINX_STABLE}")

    def line(m: re.Match[str]) -> str:
        ip, params = m.group(2), m.group(4)
        if ip in weights:
            params = re.sub(r"\s+weight=\d+", "", params) + f" weight={weights[ip]}"
        if ip in down:
            params += " down"
        return f"{m.group(1)}{ip}{m.group(3) or ''}{params};"

    text = NGINX_SERVER.sub(line, stable) + "\n"
    _sh(
        c,
        f"printf %s {shlex.quote(text)} > {NGINX_CONFIG}.new && mv {NGINX_CONFIG}.new "
        f"{NGINX_CONFIG} && nginx -t -q && nginx -s reload",
    )


def nginx_restore(c: Container) -> bool:
    """Back to the config the run started with, reloaded; False when it was never changed."""
    code, _ = c.exec_run(["test", "-f", NGINX_STABLE])
    if code != 0:
        return False
    _sh(c, f"cp -p {NGINX_STABLE} {NGINX_CONFIG} && nginx -s reload && rm -f {NGINX_STABLE}")
    return True


def nginx_old_workers(c: Container) -> int:
    """Workers of a previous config still finishing their requests after a reload."""
    code, out = c.exec_run(["pgrep", "-f", "nginx: worker process is shutting down"])
    return len(out.split()) if code == 0 else 0


# ---------------------------------------------------------------- both


def wait_until(
    check: Callable[[], bool], timeout: float, period: float = 0.1
) -> tuple[bool, float]:
    """(whether `check` came true within `timeout`, seconds waited)."""
    t0 = time.monotonic()
    while True:
        if check():
            return True, time.monotonic() - t0
        if time.monotonic() - t0 >= timeout:
            return False, time.monotonic() - t0
        time.sleep(period)


def restore(lb: Lb, c: Container) -> None:
    """Every server of `lb` that we may have touched back in service, at its configured
    weight. Idempotent; a container that is gone has nothing left to restore."""
    try:
        if lb.kind == "haproxy":
            for name in lb.servers.values():
                haproxy_set(c, f"set server {BACKEND}/{name} state ready")
                haproxy_set(c, f"set weight {BACKEND}/{name} 100%")
        else:
            nginx_restore(c)
    except NotFound:
        pass
    except APIError as exc:
        raise InfrastructureError(f"cannot restore {lb.instance}: {exc.explanation}") from None
