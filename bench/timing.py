"""How exactly the harness times ejection and failover, against the components' own account.

On one kept-up stack (bench/topologies/timing.yaml: 2 HAProxy + Keepalived, 3 web nodes, Redis,
MariaDB), with light traffic through the VIP, the script repeats two faults with the harness's
own fault classes (the fault instant is taken the way harness.chaos.schedule does: just before
`inject()`) and reads the instants with the harness's own watchers:

  ejection  kill a web node (web-1, web-2, web-3 in turn). The harness's instant: LogWatcher's
            Docker log timestamp of HAProxy's `Server app/web-N is DOWN`, on each LB.
            Ground truth: HAProxy's own server state, read from its stats socket
            (`show servers state app`, /run/haproxy/admin.sock) every 20 ms; the change is placed
            halfway between the two reads that bracket it (HAProxy's `log stdout format raw`
            line carries no clock of its own).
  failover  kill the VIP holder (vip_failover, method kill). The harness's instants:
            LogWatcher's Docker timestamp of Keepalived's `(VI_1) Entering MASTER STATE` on the
            new holder, and VipWatcher's arrival time of the first sample showing the VIP there.
            Ground truth: the line `images/lb/keepalived-notify.sh` wrote (`date +%s.%N`) into
            /var/log/harness/keepalived.log inside the new holder.

Between trials the killed container is started again and the script waits until both LBs see
every web node UP (stats socket and LogWatcher) and the VIP is back on lb-1 alone (preempt).
Goal: worst |harness instant - component instant| < 100 ms, and no trial missed.

Exit code: 0 measured and goal met, 1 measured and goal missed, 2 could not measure (or
interrupted). Results: tables, and bench/results/timing-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from _common import (
    BENCH,
    ROOT,
    BenchError,
    busy_note,
    console,
    fmt,
    install_sigterm,
    kept_stack,
    machine,
    median,
    say,
    worst_abs,
    write_result,
)
from docker.errors import DockerException
from rich.table import Table

from harness import chaos
from harness.chaos.base import FaultContext
from harness.chaos.container import start_if_stopped
from harness.errors import HarnessError
from harness.kinds.haproxy import ejection_bound
from harness.kinds.keepalived import STATE_LOG, failover_bound
from harness.observe import metrics
from harness.observe.exporter import HarnessExporter
from harness.runtime.docker import client
from harness.spec.models import HAProxyService, KillFault, VipFailoverFault
from harness.watch.events import EventWatcher
from harness.watch.logs import LogWatcher
from harness.watch.vip import VipWatcher

TOPOLOGY = BENCH / "topologies" / "timing.yaml"
GOAL_MS = 100.0
STATS_SOCKET = "/run/haproxy/admin.sock"


# --------------------------------------------------------------------------- ground truth


def container_pid(container_id: str) -> int:
    """The container's init PID on this host (0 when it is not running)."""
    return int(client().api.inspect_container(container_id)["State"].get("Pid") or 0)


@dataclass
class Change:
    server: str
    state: str  # UP | DOWN
    at: float  # halfway between the two socket reads that bracket the change
    half_width: float  # the change happened within +- this of `at`


class HAProxyPoller(threading.Thread):
    """HAProxy's own view of its servers, read every `period` from its admin socket through
    /proc/<pid>/root (the engine runs on this host), timestamped around each read."""

    def __init__(self, container_id: str, instance: str, period: float = 0.02) -> None:
        super().__init__(name=f"truth-{instance}", daemon=True)
        self.container_id, self.instance, self.period = container_id, instance, period
        self.states: dict[str, str] = {}
        self.changes: list[Change] = []
        self.reads = 0
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.pid = 0

    @staticmethod
    def query(path: str) -> dict[str, str]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(path)
            s.sendall(b"show servers state app\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        states = {}
        for line in data.decode(errors="replace").splitlines():
            f = line.split()  # be_id be_name srv_id srv_name srv_addr srv_op_state ...
            if len(f) > 5 and f[0].isdigit() and f[1] == "app":
                states[f[3]] = "DOWN" if f[5] == "0" else "UP"  # SRV_ST_STOPPED is 0
        return states

    def run(self) -> None:
        prev_mid: float | None = None
        while not self.halt.is_set():
            if not self.pid:
                try:
                    self.pid = container_pid(self.container_id)
                except Exception:  # noqa: BLE001 - the engine is busy or the container is gone
                    self.pid = 0
                if not self.pid:
                    prev_mid = None
                    self.halt.wait(0.2)
                    continue
            t0 = time.time()
            try:
                states = self.query(f"/proc/{self.pid}/root{STATS_SOCKET}")
            except OSError:  # restarting, or not up yet: look the PID up again
                self.pid, prev_mid = 0, None
                with self.lock:
                    self.states = {}
                self.halt.wait(0.1)
                continue
            t1 = time.time()
            mid = (t0 + t1) / 2
            with self.lock:
                if prev_mid is not None:
                    for server, state in states.items():
                        if self.states.get(server, state) != state:
                            self.changes.append(
                                Change(server, state, (prev_mid + mid) / 2, (mid - prev_mid) / 2)
                            )
                self.states, prev_mid = states, mid
                self.reads += 1
            self.halt.wait(max(0.0, self.period - (time.time() - t0)))

    def snapshot(self) -> dict[str, str]:
        with self.lock:
            return dict(self.states)

    def first(self, server: str, state: str, after: float) -> Change | None:
        with self.lock:
            return next(
                (
                    c
                    for c in self.changes
                    if c.server == server and c.state == state and c.at + c.half_width >= after
                ),
                None,
            )


def notify_transitions(container_id: str) -> list[tuple[float, str]]:
    """(timestamp, state) lines keepalived-notify.sh wrote inside the container."""
    pid = container_pid(container_id)
    text = ""
    if pid:
        try:
            text = Path(f"/proc/{pid}/root{STATE_LOG}").read_text()
        except OSError:
            text = ""
    out = []
    for line in text.splitlines():
        f = line.split()  # ts TYPE NAME STATE PRIORITY
        if len(f) >= 4:
            try:
                out.append((float(f[0]), f[3]))
            except ValueError:
                continue
    return out


class Traffic(threading.Thread):
    """Light load: `GET /health` through the VIP every `period` (keep-alive; 3 s timeout, above
    HAProxy's 1 s connect timeout + 1 retry), recording when each answer came, whether it
    succeeded, X-Served-By and X-LB."""

    def __init__(self, url: str, period: float = 0.02) -> None:
        super().__init__(name="traffic", daemon=True)
        self.url, self.period = f"{url}/health", period
        self.records: list[tuple[float, bool, str, str]] = []
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=3.0) as http:
            while not self.halt.is_set():
                t0 = time.time()
                try:
                    r = http.get(self.url)
                    rec = (
                        time.time(),
                        r.status_code == 200,
                        r.headers.get("X-Served-By", ""),
                        r.headers.get("X-LB", ""),
                    )
                except httpx.HTTPError:
                    rec = (time.time(), False, "", "")
                with self.lock:
                    self.records.append(rec)
                self.halt.wait(max(0.0, self.period - (time.time() - t0)))

    def first_ok_via(self, lb: str, after: float) -> float | None:
        with self.lock:
            return next(
                (t for t, ok, _, via in self.records if t >= after and ok and via == lb), None
            )

    def failures(self, start: float, end: float) -> tuple[int, int]:
        with self.lock:
            xs = [ok for t, ok, _, _ in self.records if start <= t <= end]
        return xs.count(False), len(xs)

    def recent_ok(self, seconds: float = 1.0) -> bool:
        now = time.time()
        with self.lock:
            xs = [ok for t, ok, _, _ in self.records[-200:] if t >= now - seconds]
        return bool(xs) and all(xs)


# --------------------------------------------------------------------------- the harness's watchers


class ClosableLogs:
    """A container stand-in for LogWatcher that keeps the log stream, so it can be closed."""

    def __init__(self, container: Any) -> None:
        self.container = container
        self.streams: list[Any] = []

    def logs(self, **kwargs: Any) -> Any:
        stream = self.container.logs(**kwargs)
        self.streams.append(stream)
        return stream

    def close(self) -> None:
        for s in self.streams:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - already closed
                pass


class LogWatchers:
    """One harness LogWatcher per LB, replaced when its LB was restarted."""

    def __init__(
        self, containers: dict[str, Any], lbs: list[str], exporter: HarnessExporter
    ) -> None:
        self.containers, self.lbs, self.exporter = containers, lbs, exporter
        self.current: dict[str, tuple[LogWatcher, ClosableLogs]] = {}

    def ensure(self, restart: tuple[str, ...] = ()) -> None:
        for lb in self.lbs:
            cur = self.current.get(lb)
            if cur is not None and cur[0].thread.is_alive() and lb not in restart:
                continue
            if cur is not None:
                cur[1].close()
            proxy = ClosableLogs(self.containers[lb])
            w = LogWatcher(cast(Any, proxy), lb, self.exporter, time.time() - 1)
            w.start()
            self.current[lb] = (w, proxy)

    def servers(self, lb: str) -> dict[str, str]:
        cur = self.current.get(lb)
        return dict(cur[0].servers) if cur else {}

    def close(self) -> None:
        for _, proxy in self.current.values():
            proxy.close()


def gauge(exporter: HarnessExporter, name: str, after: float, **labels: str) -> float | None:
    """A timestamp gauge of the harness's exporter, if it was set at or after `after`."""
    v = exporter.registry.get_sample_value(name, labels)
    return v if v is not None and v >= after else None


# --------------------------------------------------------------------------- trials


@dataclass
class Trial:
    kind: str  # ejection | failover
    n: int
    target: str
    fault_at: float
    inject_s: float  # how long the Docker kill call took
    docker_kill_ms: float | None = None  # Docker's `kill` event (engine clock) - the fault instant
    # instrument -> harness instant - component instant
    errors_ms: dict[str, float | None] = field(default_factory=dict)
    resolution_ms: dict[str, float] = field(default_factory=dict)  # truth half-width, when polled
    durations_s: dict[str, float | None] = field(default_factory=dict)  # fault instant -> instant
    instants: dict[str, float | None] = field(default_factory=dict)
    client_failures: str = ""
    missed: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, run: Any, args: argparse.Namespace) -> None:
        self.run, self.args = run, args
        plan = run.plan
        self.containers: dict[str, Any] = run.stack.containers
        self.lbs = [c.instance for c in plan.containers if c.kind == "haproxy"]
        self.webs = [c.instance for c in plan.containers if c.kind == "web"]
        services = {c.service for c in plan.containers if c.kind == "haproxy"}
        if len(self.lbs) != 2 or len(services) != 1 or not self.webs:
            raise BenchError("the topology needs one HAProxy service of 2 replicas and web nodes")
        self.lb_service = services.pop()
        self.vip = plan.vips.get(self.lb_service)
        if self.vip is None:
            raise BenchError(f"{self.lb_service} has no Keepalived VIP")
        self.ctx = FaultContext(self.containers, plan.run_id, plan)
        self.exporter = HarnessExporter("127.0.0.1", 0)
        self.events = EventWatcher(plan.run_id, self.exporter, time.time())
        self.logs = LogWatchers(self.containers, self.lbs, self.exporter)
        self.pollers = {
            lb: HAProxyPoller(self.containers[lb].id, lb, args.poll / 1000) for lb in self.lbs
        }
        self.traffic = Traffic(plan.load_url, args.traffic_period / 1000)
        svc = run.topo.services[self.lb_service]
        assert isinstance(svc, HAProxyService) and svc.keepalived is not None
        self.bounds = {"ejection": ejection_bound(svc), "failover": failover_bound(svc.keepalived)}

    def start(self) -> None:
        if not Path(
            f"/proc/{container_pid(self.containers[self.lbs[0]].id)}/root{STATS_SOCKET}"
        ).exists():
            raise BenchError(
                f"cannot reach HAProxy's stats socket through /proc/<pid>/root{STATS_SOCKET}: "
                "bench/timing.py needs the Docker engine on this host, run as root"
            )
        for p in self.pollers.values():
            p.start()
        self.traffic.start()
        self.events.start()
        self.logs.ensure()

    def stop(self) -> None:
        for p in self.pollers.values():
            p.halt.set()
        self.traffic.halt.set()
        self.events.stop()
        self.logs.close()
        self.exporter.close()

    # ------------------------------------------------------------------ state

    def vip_on(self, lb: str) -> bool:
        try:
            code, out = self.containers[lb].exec_run(
                ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]
            )
        except Exception:  # noqa: BLE001 - a stopped LB holds nothing
            return False
        return code == 0 and f" {self.vip}/" in out.decode(errors="replace")

    def problems(self) -> list[str]:
        out = []
        for lb in self.lbs:
            truth, seen = self.pollers[lb].snapshot(), self.logs.servers(lb)
            down = [w for w in self.webs if truth.get(w) != "UP"]
            if down:
                out.append(f"{lb} stats socket: {', '.join(down)} not UP")
            if not_up := [w for w, s in seen.items() if s != "UP"]:
                out.append(f"{lb} log: {', '.join(not_up)} last seen {seen[not_up[0]]}")
        holders = [lb for lb in self.lbs if self.vip_on(lb)]
        if holders != self.lbs[:1]:
            out.append(f"VIP on {', '.join(holders) or 'nobody'}, expected {self.lbs[0]} alone")
        if not self.traffic.recent_ok():
            out.append("traffic through the VIP is failing")
        return out

    def wait_steady(self, timeout: float) -> float:
        t0 = time.monotonic()
        problems: list[str] = []
        while time.monotonic() - t0 < timeout:
            problems = self.problems()
            if not problems:
                return time.monotonic() - t0
            time.sleep(0.25)
        raise BenchError(
            f"the stack was not steady again within {timeout:g}s: {'; '.join(problems)}"
        )

    def _wait(self, ready: Any) -> None:
        deadline = time.monotonic() + self.args.timeout
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.02)

    # ------------------------------------------------------------------ the two faults

    def ejection(self, n: int) -> Trial:
        target = self.webs[n % len(self.webs)]
        self.logs.ensure()
        time.sleep(self.args.settle)
        fault = chaos.make("kill", KillFault(target=target), self.ctx)
        t = time.time()  # harness.chaos.schedule: the instant is taken just before inject()
        fault.inject()
        trial = Trial("ejection", n, target, t, time.time() - t)

        def seen(lb: str) -> float | None:
            return gauge(
                self.exporter,
                metrics.BACKEND_STATE.name,
                t,
                lb=lb,
                server=target,
                state="DOWN",
            )

        self._wait(
            lambda: all(self.pollers[lb].first(target, "DOWN", t) and seen(lb) for lb in self.lbs)
        )
        harness_at, truth_at = [], []
        for lb in self.lbs:
            truth, mine = self.pollers[lb].first(target, "DOWN", t), seen(lb)
            trial.instants[f"{lb} log"] = mine
            trial.instants[f"{lb} socket"] = truth.at if truth else None
            if truth is None or mine is None:
                trial.missed.append(lb)
                trial.errors_ms[lb] = None
                continue
            trial.errors_ms[lb] = 1000 * (mine - truth.at)
            trial.resolution_ms[lb] = 1000 * truth.half_width
            harness_at.append(mine)
            truth_at.append(truth.at)
        # The ejection_time assertion: min over the LBs of the DOWN instant, minus the fault instant.
        trial.durations_s["harness"] = min(harness_at) - t if harness_at else None
        trial.durations_s["truth"] = min(truth_at) - t if truth_at else None
        # restore: start the node, wait until both LBs (socket and log) have it UP again
        start_if_stopped(self.containers[target])
        self.wait_steady(self.args.restore_timeout)
        self.finish(trial)
        return trial

    def failover(self, n: int) -> Trial:
        self.logs.ensure()
        vips = VipWatcher(
            self.lb_service,
            self.vip,
            {lb: self.containers[lb] for lb in self.lbs},
            self.exporter,
            # The sampling loop inside each LB ends by itself after this: only this trial's.
            self.args.settle + self.args.timeout + 10,
        )
        vips.start()
        deadline = time.monotonic() + 10
        while vips.holder() != self.lbs[0]:
            if time.monotonic() > deadline:
                raise BenchError(f"VipWatcher never saw the VIP on {self.lbs[0]}")
            time.sleep(0.05)
        time.sleep(self.args.settle)
        fault = chaos.make(
            "vip_failover", VipFailoverFault(service=self.lb_service, method="kill"), self.ctx
        )
        old = fault.holder
        new = next(lb for lb in self.lbs if lb != old)
        t = time.time()
        fault.inject()
        trial = Trial("failover", n, old, t, time.time() - t)
        new_id = self.containers[new].id

        def truth() -> float | None:
            return next(
                (ts for ts, state in notify_transitions(new_id) if state == "MASTER" and ts >= t),
                None,
            )

        def keepalived() -> float | None:
            return gauge(
                self.exporter,
                metrics.KEEPALIVED_STATE.name,
                t,
                lb=new,
                state="MASTER",
            )

        def vip() -> float | None:
            return gauge(
                self.exporter,
                metrics.VIP_ACQUIRED.name,
                t,
                service=self.lb_service,
                lb=new,
            )

        def client() -> float | None:
            return self.traffic.first_ok_via(new, t)

        def ready() -> bool:
            return all(f() is not None for f in (truth, keepalived, vip, client))

        deadline = time.monotonic() + self.args.timeout
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        at = {
            "notify": truth(),
            "keepalived log": keepalived(),
            "vip watcher": vip(),
            "client": client(),
        }
        trial.instants = dict(at)
        for name in ("keepalived log", "vip watcher"):
            a, b = at[name], at["notify"]
            trial.errors_ms[name] = None if a is None or b is None else 1000 * (a - b)
            if trial.errors_ms[name] is None:
                trial.missed.append(name)
        trial.durations_s = {k: (v - t if v is not None else None) for k, v in at.items()}
        # restore: the harness's own rollback (start the holder, make sure Keepalived runs), then
        # wait for preempt: VIP back on lb-1 alone, every server UP everywhere
        fault.rollback()
        self.logs.ensure(restart=(old,))
        self.wait_steady(self.args.restore_timeout)
        self.finish(trial)
        return trial

    def finish(self, trial: Trial) -> None:
        """What the client saw from the fault until steady again, and Docker's own kill instant."""
        t = trial.fault_at
        trial.client_failures = "{}/{}".format(*self.traffic.failures(t, time.time()))
        kills = [
            ts
            for ts, inst, action in list(self.events.events)
            if inst == trial.target and action == "kill" and ts >= t - 1
        ]
        trial.docker_kill_ms = 1000 * (min(kills) - t) if kills else None


# --------------------------------------------------------------------------- report


ROWS = (  # (kind, error key, the harness's instrument, the component's own account)
    ("ejection", "lb", "LogWatcher: HAProxy `is DOWN` (Docker ts)", "HAProxy stats socket"),
    ("failover", "keepalived log", "LogWatcher: `Entering MASTER` (Docker ts)", "notify script"),
    ("failover", "vip watcher", "VipWatcher: VIP on new holder", "notify script"),
)
DURATIONS = (  # (kind, key, label)
    ("ejection", "harness", "ejection: harness (min over LBs, log)"),
    ("ejection", "truth", "ejection: HAProxy's own (stats socket)"),
    ("failover", "keepalived log", "failover: harness, Keepalived side (log)"),
    ("failover", "notify", "failover: Keepalived's own (notify script)"),
    ("failover", "vip watcher", "failover: VipWatcher"),
    ("failover", "client", "failover: client's first answer via new LB"),
)


def errors_of(trials: list[Trial], kind: str, key: str) -> tuple[list[float], int, list[float]]:
    errs, missed, res = [], 0, []
    for tr in (t for t in trials if t.kind == kind):
        for k in list(tr.errors_ms) if key == "lb" else [key]:  # ejection: one error per LB
            v = tr.errors_ms.get(k)
            if v is None:
                missed += 1
            else:
                errs.append(v)
            if k in tr.resolution_ms:
                res.append(tr.resolution_ms[k])
    return errs, missed, res


def summarize(trials: list[Trial], bounds: dict[str, float]) -> dict[str, Any]:
    rows = []
    for kind, key, instrument, truth in ROWS:
        errs, missed, res = errors_of(trials, kind, key)
        worst = worst_abs(errs)
        rows.append(
            {
                "kind": kind,
                "instrument": instrument,
                "ground_truth": truth,
                "samples": len(errs),
                "missed": missed,
                "median_abs_ms": median([abs(e) for e in errs]),
                "worst_abs_ms": worst,
                "median_signed_ms": median(errs),
                "truth_resolution_ms": median(res),
                "met": bool(errs) and missed == 0 and worst is not None and worst < GOAL_MS,
            }
        )
    durations = []
    for kind, key, label in DURATIONS:
        xs = [d for t in trials if t.kind == kind and (d := t.durations_s.get(key)) is not None]
        durations.append(
            {
                "kind": kind,
                "what": label,
                "samples": len(xs),
                "median_s": median(xs),
                "best_s": min(xs, default=None),
                "worst_s": max(xs, default=None),
                "config_bound_s": bounds.get(kind),
            }
        )
    kills = [t.docker_kill_ms for t in trials if t.docker_kill_ms is not None]
    return {
        "errors": rows,
        "durations": durations,
        "fault_instant": {
            "what": "Docker's `kill` event (engine clock) - the harness's fault instant",
            "samples": len(kills),
            "median_ms": median(kills),
            "worst_ms": max(kills, default=None),
        },
        "goal": {"worst_abs_error_ms": f"< {GOAL_MS:g}", "met": all(r["met"] for r in rows)},
    }


def print_tables(summary: dict[str, Any], trials: list[Trial], note: str) -> None:
    per = Table(title="per trial")
    for col in (
        "#",
        "kind",
        "target",
        "kill event",
        "error vs component (ms)",
        "took (s)",
        "client failed",
    ):
        per.add_column(
            col, justify="right" if col in ("#", "kill event", "client failed") else "left"
        )
    for tr in trials:
        per.add_row(
            str(tr.n + 1),
            tr.kind,
            tr.target,
            fmt(tr.docker_kill_ms, "+.0f", " ms"),
            ", ".join(f"{k} {fmt(v, '+.0f')}" for k, v in tr.errors_ms.items()),
            ", ".join(f"{k} {fmt(v, '.2f')}" for k, v in tr.durations_s.items()),
            tr.client_failures,
        )
    console.print(per)
    t = Table(
        title=f"error of the harness's instants (goal: worst |error| < {GOAL_MS:g} ms, none missed)"
    )
    for col in (
        "kind",
        "harness instrument",
        "vs",
        "n",
        "missed",
        "median |err|",
        "worst |err|",
        "median",
        "truth ±",
        "goal",
    ):
        t.add_column(
            col, justify="left" if col in ("kind", "harness instrument", "vs", "goal") else "right"
        )
    for r in summary["errors"]:
        t.add_row(
            r["kind"],
            r["instrument"],
            r["ground_truth"],
            str(r["samples"]),
            str(r["missed"]),
            fmt(r["median_abs_ms"], ".1f", " ms"),
            fmt(r["worst_abs_ms"], ".1f", " ms"),
            fmt(r["median_signed_ms"], "+.1f", " ms"),
            fmt(r["truth_resolution_ms"], ".1f", " ms"),
            "[green]met[/]" if r["met"] else "[red]missed[/]",
        )
    console.print(t)
    d = Table(title="durations, harness fault instant -> instant")
    for col in ("what", "n", "median", "best", "worst", "config bound"):
        d.add_column(col, justify="left" if col == "what" else "right")
    for r in summary["durations"]:
        d.add_row(
            r["what"],
            str(r["samples"]),
            fmt(r["median_s"], ".3f", " s"),
            fmt(r["best_s"], ".3f", " s"),
            fmt(r["worst_s"], ".3f", " s"),
            fmt(r["config_bound_s"], ".2f", " s"),
        )
    console.print(d)
    f = summary["fault_instant"]
    console.print(
        f"fault instant: Docker's kill event came {fmt(f['median_ms'], '.0f')} ms (median), "
        f"{fmt(f['worst_ms'], '.0f')} ms (worst) after the harness's fault instant, over {f['samples']} faults"
    )
    console.print(f"[yellow]note:[/] {note}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python bench/timing.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--trials", type=int, default=10, help="trials of each fault (default 10)")
    p.add_argument(
        "--poll", type=float, default=20.0, help="stats socket poll period, ms (default 20)"
    )
    p.add_argument(
        "--traffic-period",
        type=float,
        default=20.0,
        help="one request through the VIP every N ms (default 20)",
    )
    p.add_argument(
        "--settle", type=float, default=1.0, help="seconds of quiet before each fault (default 1)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        help="seconds to wait for every instant of a trial (default 15)",
    )
    p.add_argument(
        "--restore-timeout",
        type=float,
        default=60.0,
        help="seconds to get steady again after a trial (default 60)",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=25.0,
        help="start no trial after this many minutes (default 25)",
    )
    p.add_argument(
        "--topology", type=Path, default=TOPOLOGY, help="stack to measure (default %(default)s)"
    )
    a = p.parse_args(argv)
    if a.trials < 1 or a.poll <= 0 or a.traffic_period <= 0 or a.timeout <= 0 or a.settle < 0:
        p.error("--trials >= 1, --poll, --traffic-period and --timeout > 0, --settle >= 0")
    a.topology = a.topology.resolve()
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    install_sigterm()
    info = machine()
    trials: list[Trial] = []
    started = time.time()
    run_id, bounds, stopped_early = "", {}, ""
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-timing-") as tmpd,
            kept_stack(args.topology, Path(tmpd) / "runs") as run,
        ):
            run_id = run.run_id
            bench = Bench(run, args)
            bounds = bench.bounds
            try:
                bench.start()
                say(
                    f"steady in {bench.wait_steady(args.restore_timeout):.1f}s; "
                    f"{args.trials} ejection + {args.trials} failover trials, alternating"
                )
                for n in range(args.trials):
                    for kind in ("ejection", "failover"):
                        if time.time() - started > 60 * args.max_minutes:
                            stopped_early = f"--max-minutes {args.max_minutes:g} reached"
                            break
                        tr = bench.ejection(n) if kind == "ejection" else bench.failover(n)
                        trials.append(tr)
                        errs = ", ".join(
                            f"{k} {fmt(v, '+.0f')} ms" for k, v in tr.errors_ms.items()
                        )
                        durs = ", ".join(f"{k} {fmt(v, '.2f')}s" for k, v in tr.durations_s.items())
                        say(
                            f"{kind} {n + 1}/{args.trials} ({tr.target}): error {errs}; took {durs}"
                        )
                    if stopped_early:
                        say(f"[yellow]stopping early[/]: {stopped_early}")
                        break
            finally:
                bench.stop()
    except (BenchError, HarnessError, DockerException) as exc:
        console.print(f"[red]bench/timing could not measure:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: stack torn down")
        return 2
    summary = summarize(trials, bounds)
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    note = busy_note(info)
    print_tables(summary, trials, note)
    path = write_result(
        "timing",
        {
            "bench": "timing",
            "started_at": started,
            "ended_at": time.time(),
            "run_id": run_id,
            "topology": str(
                args.topology.relative_to(ROOT)
                if args.topology.is_relative_to(ROOT)
                else args.topology
            ),
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "machine": info,
            "note": note,
            "stopped_early": stopped_early,
            "trials": [asdict(t) for t in trials],
            **summary,
        },
    )
    console.print(f"result: {path.relative_to(ROOT)}")
    return 0 if summary["goal"]["met"] and not stopped_early else 1


if __name__ == "__main__":
    sys.exit(main())
