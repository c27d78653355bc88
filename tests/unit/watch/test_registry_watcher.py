"""Issue 13, ask 5: the registry's own (de)registration instants. The registry container prints
each PUT and DELETE under the services prefix as etcd delivers it; the watcher exports each as
a timestamp gauge with Docker's timestamp (the lines below are from a real run), ignores etcd's
own log, and does not count a line twice when it re-attaches."""

from __future__ import annotations

from harness.watch.logs import parse_ts
from harness.watch.registry import RegistryWatcher
from tests.fakes import FakeExporter

PUT = "2026-12-01T08:28:38.991384917Z registry: PUT /harness/services/web/web-1 10.213.250.12:80"
DELETE = "2026-12-01T08:28:46.058158146Z registry: DELETE /harness/services/web/web-1 "
ETCD = (
    '2026-12-01T08:28:36.542833984Z {"level":"warn","ts":"2026-12-01T08:28:36.542Z",'
    '"msg":"simple token is not cryptographically signed"}'
)


def watcher() -> tuple[RegistryWatcher, FakeExporter]:
    exporter = FakeExporter()
    return RegistryWatcher(None, "registry", exporter, 0.0), exporter


def test_put_and_delete_become_timestamped_registry_events() -> None:
    w, exporter = watcher()
    for line in (ETCD, PUT, DELETE):
        w.handle(line)
    sets = exporter.of("registry_event")
    assert sets == [
        (("registry", "web-1", "PUT"), parse_ts("2026-12-01T08:28:38.991384917Z")),
        (("registry", "web-1", "DELETE"), parse_ts("2026-12-01T08:28:46.058158146Z")),
    ]
    assert [e[1:] for e in w.events] == [
        ("registry", "web-1", "PUT"),
        ("registry", "web-1", "DELETE"),
    ]
    assert w.registered == {"web-1": False}
    assert w.states() == {}  # no backend state: the registry is not an LB


def test_a_line_seen_before_a_reattach_is_not_counted_again() -> None:
    w, exporter = watcher()
    w.handle(DELETE)
    w.handle(DELETE)
    assert len(exporter.of("registry_event")) == 1


def test_other_prefixes_of_lines_are_not_events() -> None:
    w, exporter = watcher()
    w.handle("2026-12-01T08:28:46.1Z gateway-sync: Server app/web-1 is DOWN (deregistered)")
    w.handle("2026-12-01T08:28:46.2Z registry: COMPACT /harness/services/web/web-1")
    assert exporter.of("registry_event") == []
