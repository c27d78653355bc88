"""Watchers keep up with containers that stop, run again, pause, or are created again: the
container lookup, the VIP watcher's re-attach, and the events that wake them."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from docker.errors import NotFound

from harness.runtime import labels
from harness.watch import follow as follow_mod
from harness.watch.follow import Follow
from harness.watch.vip import VipWatcher


class Fake:
    def __init__(self, name: str, status: str = "running", created: str = "2026-01-01") -> None:
        self.name, self.status, self.gone = name, status, False
        self.labels = {labels.RUN: "r1", labels.INSTANCE: "lb-1"}
        self.attrs: dict[str, Any] = {"Created": created}

    def reload(self) -> None:
        if self.gone:
            raise NotFound("gone")


def test_a_removed_container_is_found_again_in_the_live_map() -> None:
    old, new = Fake("old"), Fake("new")
    live = {"lb-1": old}
    f = Follow("lb-1", old, live)
    assert f.current() is old
    old.gone = True
    live["lb-1"] = new  # whoever created it again put it there
    assert f.current() is new


def test_a_removed_container_is_found_again_by_its_labels(monkeypatch: Any) -> None:
    old = Fake("old")
    old.gone = True
    older, newer = (
        Fake("a", created="2026-01-01T00:00:01Z"),
        Fake("b", created="2026-01-01T00:00:09Z"),
    )
    seen: list[Any] = []

    def listing(**kw: Any) -> list[Fake]:
        seen.append(kw)
        return [older, newer]

    monkeypatch.setattr(
        follow_mod, "client", lambda: SimpleNamespace(containers=SimpleNamespace(list=listing))
    )
    f = Follow("lb-1", old)
    assert f.current() is newer
    assert seen[0]["filters"] == {"label": [f"{labels.RUN}=r1", f"{labels.INSTANCE}=lb-1"]}


def test_wait_for_returns_once_woken_and_running() -> None:
    c = Fake("c", status="exited")
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


class ExecContainer(Fake):
    """exec_run streams what the test puts in a queue; None ends the exec (the container died)."""

    def __init__(self) -> None:
        super().__init__("lb-1")
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.execs = 0

    def exec_run(self, cmd: list[str], stream: bool = False) -> tuple[None, Iterator[bytes]]:
        self.execs += 1

        def gen() -> Iterator[bytes]:
            while (line := self.lines.get()) is not None:
                yield line

        return None, gen()


class Gauges:
    def __getattr__(self, name: str) -> Any:
        return SimpleNamespace(labels=lambda *a: SimpleNamespace(set=lambda v: None))


def until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_vip_watcher_reattaches_to_a_restarted_lb_and_ignores_a_paused_one() -> None:
    c = ExecContainer()
    v = VipWatcher("lb", "10.0.0.200", {"lb-1": c}, Gauges(), 60)
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
