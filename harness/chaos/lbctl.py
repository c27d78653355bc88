"""Taking a backend out of, and back into, the load balancers in front of it, through each LB's
own mechanism, which its kind declares (`Descriptor.drain`, harness/kinds/descriptor.py):
`runtime_api` is HAProxy's admin socket (`set server app/web-1 state drain`, then `maint`, then
`ready`; `set weight`); `reload` is Nginx's `down`/`weight=` on the upstream's server lines plus a
graceful reload (old workers finish what they serve, then exit), done inside the container by
images/lb/nginx-upstreams.sh, the same script whose active health checks mark servers `down`.

Which LB balances which instances is read from the LB's rendered config in the plan (its
kind's server lines), so it also holds for a user's own `config:` that keeps the template's
backend name and admin socket. The admin socket is reached through `/proc/<pid>/root` of the LB
container: the engine runs on this host (partitions enter namespaces the same way), and the LB
image carries no socket client."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from docker.errors import APIError, NotFound
from docker.models.containers import Container

from harness import kinds
from harness.errors import InfrastructureError
from harness.plan.model import RunPlan

STATS_SOCKET = "/run/haproxy/admin.sock"
BACKEND = "app"  # the template's backend (harness/kinds/templates/haproxy.cfg.j2)
NGINX_UPSTREAMS = "/usr/local/bin/nginx-upstreams.sh"  # images/lb/nginx-upstreams.sh
RUNTIME_API, RELOAD = "runtime_api", "reload"  # the two `Drain.how`s
Step = Callable[..., dict[str, Any]]  # journals a step before it is applied; returns it


@dataclass(frozen=True)
class Lb:
    instance: str
    kind: str
    servers: dict[str, str]  # backend instance -> the LB's name for it (runtime_api) or its IP
    how: str = RUNTIME_API  # its kind's Drain.how
    top_weight: int = 256


def lb(instance: str, kind: str, servers: dict[str, str]) -> Lb:
    """An Lb of a kind that drains (as the journal names it)."""
    d = kinds.descriptor(kind).drain
    if d is None:
        raise InfrastructureError(f"{instance} ({kind}) cannot take a backend out")
    return Lb(instance, kind, servers, d.how, d.top_weight)


def lbs_in_front(plan: RunPlan, service: str) -> list[Lb]:
    """Every LB instance whose config routes to an instance of `service`."""
    mine = {c.instance: c.ip for c in plan.instances(service)}
    out = []
    for c in plan.containers:
        d = kinds.descriptor(c.kind).drain
        if d is None:
            continue
        named = set(d.server.findall(c.files.get(d.config, "")))
        if d.how == RUNTIME_API:
            servers = {i: i for i in mine if i in named}
        else:
            servers = {i: ip for i, ip in mine.items() if ip in named}
        if servers:
            out.append(Lb(c.instance, c.kind, servers, d.how, d.top_weight))
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


def _sh(c: Container, argv: list[str]) -> str:
    code, out = c.exec_run(argv)
    text = out.decode(errors="replace").strip()
    if code != 0:
        raise InfrastructureError(f"in {c.name}: `{' '.join(argv)[:80]}` failed: {text[-300:]}")
    return text


def nginx_rewrite(c: Container, down: set[str], weights: dict[str, int]) -> None:
    """The stable config with `down` on the server lines of the IPs in `down` (and of those the
    health checks hold down) and `weight=` set for those in `weights`, then a graceful reload
    (`nginx -t` first: a bad config keeps the old one serving)."""
    w = " ".join(f"{ip}={n}" for ip, n in sorted(weights.items()))
    _sh(c, [NGINX_UPSTREAMS, "admin", " ".join(sorted(down)), w])


def nginx_restore(c: Container) -> bool:
    """Back to the config the run started with (but for what the health checks hold down),
    reloaded; False when it was never changed."""
    return _sh(c, [NGINX_UPSTREAMS, "restore"]) != "unchanged"


def nginx_old_workers(c: Container) -> int:
    """Workers of a previous config still finishing their requests after a reload."""
    code, out = c.exec_run(["pgrep", "-f", "nginx: worker process is shutting down"])
    return len(out.split()) if code == 0 else 0


# ---------------------------------------------------------------- either, by the LB's Drain.how


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


def take_out(lb: Lb, c: Container, names: list[str], weights: dict[str, int], step: Step) -> None:
    """No new requests to `names` (HAProxy `drain`; Nginx `down` + reload)."""
    if lb.how == RUNTIME_API:
        for name in names:
            step("drain", lb=lb.instance, server=name)
            haproxy_set(c, f"set server {BACKEND}/{name} state drain")
    else:
        step("down_reload", lb=lb.instance, servers=sorted(names))
        nginx_rewrite(c, set(names), weights)


def wait_idle(lb: Lb, c: Container, names: list[str], timeout: float, step: Step) -> None:
    """Wait for the requests in flight on `names` (HAProxy: their sessions; Nginx: the old
    workers), then, on HAProxy, put them in maintenance."""
    s = step("wait_in_flight", lb=lb.instance, servers=names)
    if lb.how == RUNTIME_API:

        def idle() -> bool:
            servers = haproxy_servers(c)
            return all(servers.get(n, ("", 0))[1] == 0 for n in names)

        done, took = wait_until(idle, timeout)
    else:
        done, took = wait_until(lambda: nginx_old_workers(c) == 0, timeout)
    s.update(took=took, drained=done)
    if lb.how == RUNTIME_API:
        for name in names:
            step("maint", lb=lb.instance, server=name)
            haproxy_set(c, f"set server {BACKEND}/{name} state maint")


def put_back(lb: Lb, c: Container, names: list[str], weights: dict[str, int], step: Step) -> None:
    """`names` back in service, every server at `weights` (a canary's) where given."""
    if lb.how == RUNTIME_API:
        for name, w in weights.items():
            step("set_weight", lb=lb.instance, server=name, weight=w)
            haproxy_set(c, f"set weight {BACKEND}/{name} {w}")
        for name in names:
            step("ready", lb=lb.instance, server=name)
            haproxy_set(c, f"set server {BACKEND}/{name} state ready")
    else:
        step("up_reload", lb=lb.instance, weights=weights)
        nginx_rewrite(c, set(), weights)


def wait_up(lb: Lb, c: Container, names: list[str], timeout: float, step: Step) -> None:
    """Wait until the LB's own health checks serve `names` again: HAProxy reports them UP;
    Nginx with active checks (images/lb/nginx-upstreams.sh `up`) holds none of them `down` and
    has passed a check on each since they were put back, so a node out for longer than `fall`
    checks is not left held down while the next batch is drained (without checks it serves a
    server as soon as its `down` is gone: `up` answers at once)."""
    if not names:
        return
    s = step("wait_up", lb=lb.instance, servers=names)

    def up() -> bool:
        if lb.how != RUNTIME_API:
            return c.exec_run([NGINX_UPSTREAMS, "up", *names])[0] == 0
        servers = haproxy_servers(c)
        return all(servers.get(n, ("",))[0].startswith("UP") for n in names)

    done, took = wait_until(up, timeout)
    s.update(took=took, up=done)
    if not done:
        raise InfrastructureError(
            f"{lb.instance} did not see {', '.join(names)} UP within {timeout:g}s after the restart"
        )


def restore(lb: Lb, c: Container) -> None:
    """Every server of `lb` that we may have touched back in service, at its configured
    weight. Idempotent; a container that is gone has nothing left to restore."""
    try:
        if lb.how == RUNTIME_API:
            for name in lb.servers.values():
                haproxy_set(c, f"set server {BACKEND}/{name} state ready")
                haproxy_set(c, f"set weight {BACKEND}/{name} 100%")
        else:
            nginx_restore(c)
    except NotFound:
        pass
    except APIError as exc:
        raise InfrastructureError(f"cannot restore {lb.instance}: {exc.explanation}") from None
