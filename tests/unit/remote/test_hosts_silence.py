"""Silence is not health on runtime: hosts (review 16, #3 and #8): a host whose status loop never
answered (or stopped answering), an LB whose log is not being read, and an LB log naming
servers that are no host keep the recovery watcher unsteady; the baseline waits for every
status and refuses a log that cannot be read, naming the host and the command. The streams run
for real (a stand-in `ssh` on PATH runs the remote command with this machine's sh and tail)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfrastructureError
from harness.remote.lblog import server_names
from harness.remote.steady import recovery_watcher
from harness.remote.stream import Stream
from harness.remote.targets import hosts_of
from harness.remote.watch import HostWatchers, follow_command
from harness.run import hosts as hosts_run
from harness.run.hosts import HostsRun
from tests.fakes import FakeExporter
from tests.unit.remote.test_hosts_post import topo, watched
from tests.unit.remote.test_hosts_run import TOPO, topo_file


def steady_watcher(t: Any, w: HostWatchers, ex: FakeExporter) -> Any:
    w._set("lb", "lb-1", True, 1.0)
    w._set("lb", "lb-2", False, 1.0)
    rec = recovery_watcher(t, hosts_of(t), w, ex, ["locust"])
    rec.background, rec.period = False, 0.0
    rec.poll = lambda now=None: rec.record("http://locust/metrics", 0.0, now or 0.0)
    return rec


def test_no_status_and_no_log_line_is_not_steady(tmp_path: Path) -> None:
    """The review's repro: nothing ever answered, yet a stop of web-1 "recovered" at release."""
    t = topo(tmp_path)
    ex = FakeExporter()
    w = HostWatchers(t, hosts_of(t), ex, 0.0, 100.0)
    rec = steady_watcher(t, w, ex)
    rec.hold(5.0)
    rec.release(10.0)
    rec.tick(10.0)
    rec.tick(12.5)
    assert rec.recovered_at is None
    assert "no status from web-1" in rec.why and "no status from db" in rec.why
    assert "lb-1's log (/var/log/haproxy.log) is not being read" in rec.why
    rec.stop()


def test_a_status_loop_gone_quiet_or_a_dead_log_stream_is_not_steady(tmp_path: Path) -> None:
    t, w, ex = watched(tmp_path)
    rec = steady_watcher(t, w, ex)
    rec.arm(10.0)
    rec.tick(10.0)
    rec.tick(12.5)
    assert rec.recovered_at == 10.0  # every host answered, every LB log read
    w._status("web-2", True, time.time() - 5)  # its last answer is 5 s old: `control.status` hangs
    lb2 = next(
        f.stream
        for f in w.followers
        if f.field == "lb.control.log" and "lb-2" in f.stream.host.instance
    )
    lb2.following = False  # its log stream ended (ssh dropped, or tail gone)
    rec.release(20.0)
    rec.tick(20.0)
    rec.tick(23.0)
    assert rec.recovered_at is None, rec.why
    assert "no status from web-2 for 5.0s" in rec.why
    assert "lb-2's log (/var/log/haproxy.log) is not being read" in rec.why
    rec.stop()


def test_lb_servers_are_mapped_to_hosts_and_unknown_names_are_said(tmp_path: Path) -> None:
    """Review 16 #8: HAProxy's servers named by address, Nginx's upstreams by ADDR:PORT, map to
    instances; a name that is no host keeps recovery waiting and says the naming rule."""
    t, w, ex = watched(tmp_path)
    hosts = hosts_of(t)
    assert server_names([hosts["web-1"], hosts["web-2"]]) == {
        "web-1": "web-1",
        "10.0.0.21": "web-1",
        "web-2": "web-2",
        "10.0.0.22": "web-2",
    }
    lb1 = next(x for x in w.logs if x.instance == "lb-1")
    lb1.handle("2026-12-06T16:10:51.500000Z [WARNING] Server app/10.0.0.22:80 is DOWN")
    assert lb1.states() == {"web-2": "DOWN"}
    lb1.handle("2026-12-06T16:10:52.500000Z [WARNING] Server app/10.0.0.22 is UP")
    assert lb1.states() == {"web-2": "UP"} and w.silent() == []
    rec = steady_watcher(t, w, ex)
    rec.arm(10.0)
    lb1.handle("2026-12-06T16:10:53.500000Z [WARNING] Server app/web1 is DOWN")
    rec.tick(10.0)
    assert "lb-1's log names server web1, which is no host of its backends (web-1, web-2)" in (
        rec.why
    )
    assert "name the LB's servers after these instances" in rec.why
    rec.stop()


@pytest.fixture
def local_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An `ssh` that runs its last argument (`sh -c COMMAND`) here."""
    ssh = tmp_path / "bin" / "ssh"
    ssh.parent.mkdir()
    ssh.write_text('#!/bin/sh\nfor last; do :; done\nexec sh -c "$last"\n')
    ssh.chmod(0o755)
    monkeypatch.setenv("PATH", f"{ssh.parent}{os.pathsep}{os.environ['PATH']}")


def test_the_baseline_refuses_a_log_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_ssh: None
) -> None:
    log = tmp_path / "no-such.log"  # Keepalived's lines in it too: one stream per LB host
    text = TOPO.replace("{log: /var/log/haproxy.log}", f"{{log: {log}, keepalived_log: {log}}}")
    run = HostsRun(topo_file(tmp_path, text), runs_dir=tmp_path / "runs", say=lambda m: None)
    run.prom, run.exporter = object(), FakeExporter()  # type: ignore[assignment]
    monkeypatch.setattr(hosts_run.httpx, "get", lambda *a, **k: type("R", (), {"status_code": 200}))
    monkeypatch.setattr(hosts_run.observer, "not_ready", lambda *a: "")
    try:
        with pytest.raises(InfrastructureError) as e:
            run.baseline_check()
    finally:
        run.host_watchers.stop()
    said = str(e.value)  # the first LB host whose command ended, or both
    assert re.search(rf"lb-(1|2) \(ssh://ops@10\.0\.0\.1[12](:2222)?\): cannot read {log}:", said)
    assert f"`test -r {log} || exit 3;" in said and "exited 3" in said
    assert "fix services.lb.control.log" in said


def test_the_baseline_waits_for_every_hosts_status_and_lb_log(tmp_path: Path) -> None:
    t = topo(tmp_path)
    w = HostWatchers(t, hosts_of(t), FakeExporter(), 0.0, 100.0)
    w._set("lb", "lb-1", True, 1.0)
    w._set("lb", "lb-2", False, 1.0)
    assert w.sampled()  # all the old baseline waited for
    why = w.not_ready()
    assert "no status from lb-1" in why and "no status from db" in why
    assert "lb-1's log (/var/log/haproxy.log) is not being read" in why
    for i in hosts_of(t):
        w._status(i, i != "web-2", time.time())  # a service down from the start is no refusal
    for f in w.followers:
        f.stream.following = True
    assert w.not_ready() == "" and w.not_running() == ["web-2"]


def test_a_followed_log_says_ready_hands_lines_on_and_its_end_is_seen(
    tmp_path: Path, local_ssh: None
) -> None:
    """The real commands through a Stream: READY is not a line, a line written after it is
    handed on, and the stream's end makes it not followed (its exit status kept)."""
    t = topo(tmp_path)
    log = tmp_path / "lb.log"
    log.write_text("old line\n")
    lines: list[str] = []
    s = Stream(
        hosts_of(t)["lb-1"],
        follow_command(str(log), "haproxy"),
        lambda ts, line: lines.append(line),
        time.time() + 30,
    )
    s.start()
    try:
        deadline = time.time() + 10
        while not s.following and time.time() < deadline:
            time.sleep(0.05)
        assert s.following and lines == []  # tail -n0: only what is written from now on
        with log.open("a") as f:
            f.write("Server app/web-1 is DOWN\n")
        while not lines and time.time() < deadline:
            time.sleep(0.05)
        assert lines == ["Server app/web-1 is DOWN"]
        assert s.proc is not None
        for pid in descendants(s.proc.pid):  # the connection dropped: its command is gone
            os.kill(pid, signal.SIGTERM)
        while s.following and time.time() < deadline:
            time.sleep(0.05)
        assert not s.following and s.rc is not None
    finally:
        s.stop()


def descendants(pid: int) -> list[int]:
    """`pid` and the processes under it (the stand-in ssh's sh and tail), by their ids."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += [c for c, pp in parent.items() if pp == p]
    return out
