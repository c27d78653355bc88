"""What a `runtime: hosts` run watches on the machines, over SSH, as the docker runtime's
watchers do inside containers (the same gauges, so the same assertions read them):

- who holds each VIP: one sampling loop per LB host (`ip -4 -o addr`, every 50 ms), exported
  as harness_vip_holder / harness_vip_acquired_timestamp_seconds;
- Keepalived's state changes, from its log (`journalctl -u keepalived -f`, the default, or
  `control.keepalived_log: FILE` with Keepalived's own lines or a notify script's
  `TS INSTANCE NAME STATE PRIO` lines) as harness_keepalived_state_timestamp_seconds;
- the LB's server UP/DOWN lines, from its log (`journalctl -u UNIT -f`, or `control.log:
  FILE`), through the kind's own patterns (harness/watch/logs.py) as harness_backend_state;
- whether each host's service runs (`systemctl is-active UNIT`, or `control.status`, every
  250 ms), which the recovery watcher reads as the docker runtime's "every container runs".

Lines are stamped when they arrive (the host's clock is not trusted; SSH adds milliseconds)."""

from __future__ import annotations

import re
import shlex
import threading
from datetime import UTC, datetime
from typing import Any

from harness import kinds
from harness.kinds.keepalived import LOG as KEEPALIVED_LINES
from harness.remote.faults import vip_of
from harness.remote.stream import Stream
from harness.remote.targets import Host, default_unit
from harness.roles import Role, kinds_of
from harness.spec.models import Topology
from harness.watch.logs import LogWatcher

PERIOD = 0.05
STATUS_PERIOD = 0.25
GRACE = 30  # the remote loops outlive the load by this much, then end by themselves
NOTIFY = re.compile(r"^\d+(?:\.\d+)?\s+\S+\s+(\S+)\s+(MASTER|BACKUP|FAULT|STOP)\b")


def follow_command(source: str | None, unit: str) -> str:
    """The command printing a log's new lines as they are written."""
    if source is None or source == "journal":
        return f"exec journalctl -f -n0 -o cat -u {shlex.quote(unit)}"
    return f"exec tail -F -n0 {shlex.quote(source)} 2>/dev/null"


def status_command(topo: Topology, service: str) -> str:
    """What exits 0 while the service runs on its host."""
    svc = topo.services[service]
    ctl = svc.control
    if ctl is not None and ctl.status:
        return f"( {ctl.status} )"
    unit = (ctl.unit if ctl is not None else None) or default_unit(svc.kind, service)
    return f"systemctl is-active --quiet {shlex.quote(unit)}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class HostWatchers:
    def __init__(
        self,
        topo: Topology,
        hosts: dict[str, Host],
        exporter: Any,
        since: float,
        until: float,
        ssh_config: str | None = None,
    ) -> None:
        self.exporter, self.until = exporter, until + GRACE
        self.lock = threading.Lock()
        self.holding: dict[str, dict[str, bool]] = {}  # LB service -> instance -> holds
        self.expected: dict[str, list[str]] = {}  # LB service with a VIP -> its instances
        self.vip_history: dict[str, list[tuple[float, str | None]]] = {}
        self.ka_events: list[tuple[float, str, str, str]] = []
        self.logs: list[LogWatcher] = []
        self.streams: list[Stream] = []
        self.running: dict[str, bool] = {}  # instance -> its service runs
        for h in hosts.values():
            self._stream(
                h,
                self._loop(status_command(topo, h.service), STATUS_PERIOD),
                lambda ts, line, i=h.instance: self._status(i, line == "1"),
                ssh_config,
                on_exit=lambda ts, i=h.instance: self._status(i, False),
            )
        lbs = set(kinds_of(Role.LOAD_BALANCER))
        for name, svc in topo.services.items():
            if svc.kind not in lbs:
                continue
            ctl = svc.control
            mine = [h for h in hosts.values() if h.service == name]
            ka = getattr(svc, "keepalived", None)
            for h in mine:
                log = LogWatcher(
                    None, h.instance, exporter, since, lines=kinds.descriptor(svc.kind).log
                )
                self.logs.append(log)
                self._stream(
                    h,
                    follow_command(ctl.log if ctl else None, default_unit(svc.kind, name)),
                    lambda ts, line, w=log: w.handle(f"{_iso(ts)} {line}"),
                    ssh_config,
                )
                if ka is None:
                    continue
                self.holding.setdefault(name, {})
                self.expected.setdefault(name, []).append(h.instance)
                self.vip_history.setdefault(name, [])
                self._stream(
                    h,
                    self._loop(
                        f"ip -4 -o addr show | grep -q {shlex.quote(f' {vip_of(topo, name)}/')}"
                    ),
                    lambda ts, line, s=name, i=h.instance: self._set(s, i, line == "1", ts),
                    ssh_config,
                    on_exit=lambda ts, s=name, i=h.instance: self._set(s, i, False, ts),
                )
                ka_log = ctl.keepalived_log if ctl else None
                if ka_log is not None and ka_log == (ctl.log if ctl else None):
                    continue  # one file: the LB's log watcher reads Keepalived's lines too
                self._stream(
                    h,
                    follow_command(ka_log, "keepalived"),
                    lambda ts, line, i=h.instance: self._keepalived(i, line, ts),
                    ssh_config,
                )

    def _stream(self, h: Host, cmd: str, on_line: Any, cfg: str | None, **kw: Any) -> None:
        self.streams.append(Stream(h, cmd, on_line, self.until, cfg, **kw))

    def _loop(self, cond: str, period: float = PERIOD) -> str:
        """A remote loop printing 1 or 0 (whether `cond` exits 0) every `period` s."""
        return (
            f"end={int(self.until)}; while [ $(date +%s) -lt $end ]; do "
            f"if {cond} >/dev/null 2>&1; then echo 1; else echo 0; fi; "
            f"sleep {period}; done"
        )

    def start(self) -> None:
        for s in self.streams:
            s.start()

    def stop(self) -> None:
        for s in self.streams:
            s.stop()

    def _set(self, service: str, instance: str, holds: bool, ts: float) -> None:
        with self.lock:
            mine = self.holding[service]
            if mine.get(instance) == holds:
                return
            before = next((i for i, h in sorted(mine.items()) if h), None)
            mine[instance] = holds
            self.exporter.vip_holder.labels(service, instance).set(1 if holds else 0)
            if holds:
                self.exporter.vip_acquired.labels(service, instance).set(ts)
            after = next((i for i, h in sorted(mine.items()) if h), None)
            if after != before:
                self.vip_history[service].append((ts, after))

    def _status(self, instance: str, runs: bool) -> None:
        with self.lock:
            self.running[instance] = runs

    def _keepalived(self, instance: str, line: str, ts: float) -> None:
        m = NOTIFY.search(line) or next(
            (m for p in KEEPALIVED_LINES.vip if (m := p.search(line))), None
        )
        if m is None:
            return
        state = m.group(2)
        with self.lock:
            self.exporter.keepalived_state.labels(instance, state).set(ts)
            self.ka_events.append((ts, "keepalived", instance, state))

    def vip_holders(self) -> dict[str, str | None]:
        with self.lock:
            return {
                s: next((i for i, h in sorted(m.items()) if h), None)
                for s, m in self.holding.items()
            }

    def backend_states(self) -> dict[str, dict[str, str]]:
        """LB instance -> server -> UP/DOWN, as each LB's log last said (the recovery watcher)."""
        return {w.instance: states for w in self.logs if (states := w.states())}

    def not_running(self) -> list[str]:
        """The hosts whose service does not run (or whose status loop ended)."""
        with self.lock:
            return sorted(i for i, runs in self.running.items() if not runs)

    def sampled(self) -> bool:
        """Every LB host has reported whether it holds its VIP."""
        with self.lock:
            return all(set(self.holding[s]) >= set(e) for s, e in self.expected.items())

    def history(self) -> dict[str, Any]:
        """For the journal and the report (the docker watchers' shape)."""
        with self.lock:
            lb = [[t, w.instance, what, n, st] for w in self.logs for t, what, n, st in w.events]
            ka = [[t, i, what, i, st] for t, what, i, st in self.ka_events]
            return {
                "vip_holder": {s: [[t, h] for t, h in v] for s, v in self.vip_history.items()},
                "container_events": [],
                "lb_events": sorted(lb + ka),
            }
