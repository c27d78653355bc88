"""Watchers keep up with containers that stop, run again, pause, or are created again: the
container lookup, the VIP watcher's re-attach, and the events that wake them."""

from __future__ import annotations

import threading
import time
from typing import Any

from harness.runtime import labels
from harness.watch import follow as follow_mod
from harness.watch.follow import Follow
from harness.watch.vip import VipWatcher
from tests.fakes import FakeContainer, FakeDocker, FakeExporter


def test_a_removed_container_is_found_again_in_the_live_map() -> None:
    old, new = FakeContainer("lb-1", name="old"), FakeContainer("lb-1", name="new")
    live = {"lb-1": old}
    f = Follow("lb-1", old, live)
    assert f.current() is old
    old.gone = True
    live["lb-1"] = new  # whoever created it again put it there
    assert f.current() is new


def test_a_removed_container_is_found_again_by_its_labels(monkeypatch: Any) -> None:
    old = FakeContainer("lb-1", name="old")
    old.gone = True
    older, newer = (
        FakeContainer("lb-1", name="a", created="2026-01-01T00:00:01Z"),
        FakeContainer("lb-1", name="b", created="2026-01-01T00:00:09Z"),
    )
    docker = FakeDocker([older, newer])
    monkeypatch.setattr(follow_mod, "client", lambda: docker)
    f = Follow("lb-1", old)
    assert f.current() is newer
    assert docker.listed[0]["filters"] == {
        "label": [f"{labels.RUN}=r1", f"{labels.INSTANCE}=lb-1"]
    }


def test_wait_for_returns_once_woken_and_running() -> None:
    c = FakeContainer("lb-1", name="c", status="exited")
    f = Follow("lb-1", c)
    got: list[Any] = []
    t = threading.Thread(target=lambda: got.append(f.wait_for(("running",))))
    t.start()
    time.sleep(0.1)
    assert not got
    c.status = "running"
    f.wake.set()
    t.join(2)
    assert got == [c]
    f.stop()
    assert f.wait_for(("running",)) is None


def until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_vip_watcher_reattaches_to_a_restarted_lb_and_ignores_a_paused_one() -> None:
    c = FakeContainer("lb-1")
    v = VipWatcher("lb", "10.0.0.200", {"lb-1": c}, FakeExporter(), 60)
    v.start()
    try:
        c.lines.put(b"1\n")
        until(lambda: v.holder() == "lb-1")
        c.status = "exited"
        c.lines.put(None)  # the container died: its exec ends
        until(lambda: v.holder() is None)
        c.status = "running"
        v.on_event(time.time(), "lb-1", "start")
        until(lambda: c.execs == 2)
        c.lines.put(b"0\n")
        c.lines.put(b"1\n")
        until(lambda: v.holder() == "lb-1")
        assert v.attaches["lb-1"] == 2
        v.on_event(time.time(), "lb-1", "pause")
        assert v.holder() is None
        c.lines.put(b"1\n")  # written just before the freeze
        time.sleep(0.1)
        assert v.holder() is None
        v.on_event(time.time(), "lb-1", "unpause")
        c.lines.put(b"1\n")
        until(lambda: v.holder() == "lb-1")
    finally:
        v.stop()
        c.lines.put(None)
    assert [h for _, h in v.history] == ["lb-1", None, "lb-1", None, "lb-1"]
