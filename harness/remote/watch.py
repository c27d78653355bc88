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

Lines are stamped when they arrive (the host's clock is not trusted; SSH adds milliseconds).
Silence is not health: a host whose status loop has not answered for `STALE` s, and an LB whose
log is not being read (a file the SSH user cannot read, a unit that is not loaded, a journal it
may not see, a broken connection), are problems to the recovery watcher and the baseline
(`silent`); a log that cannot be read at all is refused (`unreadable`)."""

from __future__ import annotations

import re
import shlex
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from harness import kinds
from harness.kinds.keepalived import LOG as KEEPALIVED_LINES
from harness.remote.faults import vip_of
from harness.remote.lblog import HostLog
from harness.remote.stream import READY, Stream
from harness.remote.targets import Host, default_unit
from harness.roles import Role, kinds_of
from harness.spec.models import Topology

PERIOD = 0.05
STATUS_PERIOD = 0.25
GRACE = 30  # the remote loops outlive the load by this much, then end by themselves
NOTIFY = re.compile(r"^\d+(?:\.\d+)?\s+\S+\s+(\S+)\s+(MASTER|BACKUP|FAULT|STOP)\b")
STALE = 2.0  # a status sample older than this is no sample
# how a follow_command says it cannot read its log: exit status -> why
UNREADABLE = {
    3: "cannot read {source}",
    4: "no systemd unit {unit} is loaded",
    5: "this SSH user sees no system journal (add it to the systemd-journal group)",
}


def follow_command(source: str | None, unit: str) -> str:
    """The command printing a log's new lines as they are written, after READY (once it can
    read the log), or exiting with a code of UNREADABLE's."""
    if source is None or source == "journal":
        u = shlex.quote(unit)
        return (
            f"systemctl show -p LoadState {u} 2>/dev/null | grep -qx LoadState=loaded || exit 4; "
            "journalctl -q -n1 --system 2>/dev/null | grep -q . || exit 5; "
            f"echo '{READY}'; exec journalctl -f -n0 -o cat -u {u}"
        )
    f = shlex.quote(source)
    return f"test -r {f} || exit 3; echo '{READY}'; exec tail -F -n0 {f} 2>/dev/null"


def status_command(topo: Topology, service: str) -> str:
    """What exits 0 while the service runs on its host."""
    svc = topo.services[service]
    ctl = svc.control
    if ctl is not None and ctl.status:
        return f"( {ctl.status} )"
    unit = (ctl.unit if ctl is not None else None) or default_unit(svc.kind, service)
    return f"systemctl is-active --quiet {shlex.quote(unit)}"


@dataclass(frozen=True)
class Follower:
    stream: Stream
    field: str  # the topology's field naming the log: lb.control.log
    source: str  # journal, or the file
    unit: str


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
        self.logs: list[HostLog] = []
        self.streams: list[Stream] = []
        self.running: dict[str, tuple[bool, float]] = {}  # instance -> its service runs, when
        self.status: dict[str, str] = {}  # instance -> the command telling
        self.followers: list[Follower] = []  # every log followed
        for h in hosts.values():
            self.status[h.instance] = status_command(topo, h.service)
            self._stream(
                h,
                self._loop(self.status[h.instance], STATUS_PERIOD),
                lambda ts, line, i=h.instance: self._status(i, line == "1", ts),
                ssh_config,
                on_exit=lambda ts, i=h.instance: self._status(i, False, ts),
            )
        lbs = set(kinds_of(Role.LOAD_BALANCER))
        for name, svc in topo.services.items():
            if svc.kind not in lbs:
                continue
            ctl = svc.control
            mine = [h for h in hosts.values() if h.service == name]
            ka = getattr(svc, "keepalived", None)
            backends = [h for h in hosts.values() if h.service == getattr(svc, "backends", "")]
            for h in mine:
                log = HostLog(h.instance, exporter, since, kinds.descriptor(svc.kind).log, backends)
                self.logs.append(log)
                self._follow(
                    h,
                    (ctl.log if ctl else None, default_unit(svc.kind, name), f"{name}.control.log"),
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
                self._follow(
                    h,
                    (ka_log, "keepalived", f"{name}.control.keepalived_log"),
                    lambda ts, line, i=h.instance: self._keepalived(i, line, ts),
                    ssh_config,
                )

    def _stream(self, h: Host, cmd: str, on_line: Any, cfg: str | None, **kw: Any) -> Stream:
        stream = Stream(h, cmd, on_line, self.until, cfg, **kw)
        self.streams.append(stream)
        return stream

    def _follow(
        self, h: Host, log: tuple[str | None, str, str], on_line: Any, cfg: str | None
    ) -> None:
        """Follow a log (`log`: its source, systemd unit and field)."""
        source, unit, field = log
        stream = self._stream(h, follow_command(source, unit), on_line, cfg)
        self.followers.append(Follower(stream, field, source or "journal", unit))

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
        for log in self.logs:
            log.expirer.start()  # Nginx's ejected servers come back after fail_timeout

    def stop(self) -> None:
        for s in self.streams:
            s.stop()
        for log in self.logs:
            log.stop()

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

    def _status(self, instance: str, runs: bool, ts: float) -> None:
        with self.lock:
            self.running[instance] = (runs, ts)

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
            return sorted(i for i, (runs, _) in self.running.items() if not runs)

    def silent(self, now: float | None = None) -> list[str]:
        """What the watchers cannot vouch for (the recovery watcher's problems): a host whose
        status loop never answered or not for STALE s, an LB log not being read, an LB log
        naming servers that are no host."""
        now = time.time() if now is None else now
        out = []
        with self.lock:
            for inst in self.status:
                at = self.running.get(inst, (False, None))[1]
                if at is None:
                    out.append(f"no status from {inst}")
                elif now - at > STALE:
                    out.append(f"no status from {inst} for {now - at:.1f}s")
        for f in self.followers:
            if not f.stream.following and f.field.endswith(".control.log"):
                out.append(f"{f.stream.host.instance}'s log ({f.source}) is not being read")
        for log in self.logs:
            out += log.unmapped()
        return out

    def unreadable(self) -> list[str]:
        """The logs that cannot be read at all (their command said so), one line each with the
        host, the command and the field to fix."""
        out = []
        for f in self.followers:
            why = UNREADABLE.get(f.stream.rc or 0)
            if why is not None:
                h = f.stream.host
                out.append(
                    f"{h.instance} ({h.url}): {why.format(source=f.source, unit=f.unit)}: "
                    f"`{f.stream.command}` exited {f.stream.rc} (fix services.{f.field}: journal "
                    "or a file the SSH user can read)"
                )
        return out

    def not_ready(self) -> str:
        """Why the baseline cannot start the load yet ("" once every host said whether its
        service runs, every LB log is read and every LB host said whether it holds its VIP)."""
        why = self.silent()
        if not self.sampled():
            why.append("not every LB host reported whether it holds the VIP")
        return "; ".join(why)

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
