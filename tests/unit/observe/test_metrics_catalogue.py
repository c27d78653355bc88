"""One catalogue of metric names (harness/observe/metrics.py): what the exporter and the Locust
plugin register is exactly what it declares (name, help text, label names), it stays cheap to
import inside Locust's processes, and no other module of the package spells a metric name."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client import CollectorRegistry

from harness.load.requeststats import ClientState, RequestStats
from harness.observe import metrics
from harness.observe.exporter import HarnessExporter

PACKAGE = Path(__file__).resolve().parents[3] / "harness"


def families(registry: CollectorRegistry) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """name -> (type, help, label names) of every family a registry exposes (label names read
    from the family's declaration, so families without samples count too)."""
    out = {}
    for family in registry.collect():
        labels: tuple[str, ...] = ()
        for sample in family.samples:
            labels = tuple(k for k in sample.labels if k not in ("le", "quantile"))
            break
        out[family.name] = (family.type, family.documentation, labels)
    return out


def declared(*catalogue: metrics.Metric) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    return {m.name: (m.type, m.help, m.labels) for m in catalogue}


def test_the_exporter_registers_what_the_catalogue_declares() -> None:
    exporter = HarnessExporter("127.0.0.1", 0)
    try:
        for name in ("fault_start", "fault_end", "backend_state", "vip_holder", "testinfra_failed"):
            gauge = getattr(exporter, name)
            gauge.labels(*("x" for _ in gauge._labelnames)).set(1)
        for name in ("recovered", "relapse", "writes_missing", "writes_checked", "post_run"):
            getattr(exporter, name).set(1)
        got = families(exporter.registry)
    finally:
        exporter.close()
    want = declared(*metrics.EXPORTER)
    assert set(got) == set(want)
    for name, (kind, doc, labels) in got.items():
        assert (kind, doc) == want[name][:2]
        if labels:
            assert labels == want[name][2], name


def test_the_request_collectors_export_what_the_catalogue_declares() -> None:
    registry = CollectorRegistry()
    stats, clients = RequestStats(), ClientState()
    registry.register(stats)
    registry.register(clients)
    stats.record("/a", "GET", "502", "none", 0.2, True, 101.0, 100.0)
    clients.record(1, True, "lb-1", 100.0)
    clients.record(1, True, "lb-2", 101.0)
    got = families(registry)
    want = declared(*metrics.PLUGIN)
    assert got and set(got) <= set(want)
    for name, value in got.items():
        assert value == want[name], name


def test_the_plugin_registers_what_the_catalogue_declares() -> None:
    script = textwrap.dedent("""
        import json
        import locust  # noqa: F401  (gevent first)
        from harness.load import plugin
        plugin.session_lost("vanished")
        plugin.USERS.labels("local").set(1)
        plugin.STATS.record("/a", "GET", "200", "web-1", 0.1, False, 2.0, 1.0)
        plugin.CLIENTS.record(1, True, "lb-1", 1.0)
        plugin.CLIENTS.record(1, True, "lb-2", 2.0)
        out = {}
        for f in plugin.REGISTRY.collect():
            labels = [k for k in (f.samples[0].labels if f.samples else {}) if k != "le"]
            out[f.name] = [f.type, f.documentation, labels]
        print(json.dumps(out))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    want = declared(*metrics.PLUGIN)
    assert set(got) == set(want)
    for name, (kind, doc, labels) in got.items():
        assert (kind, doc) == want[name][:2], name
        if labels:
            assert tuple(labels) == want[name][2], name


def test_the_wire_names_are_the_catalogue_names() -> None:
    assert metrics.REQUESTS.total == "harness_requests_total"
    assert metrics.REQUEST_DURATION.bucket == "harness_request_duration_seconds_bucket"
    assert metrics.VIP_HOLDER.name == "harness_vip_holder"
    names = [m.name for m in metrics.ALL]
    assert len(names) == len(set(names)) and all(n.startswith(metrics.PREFIX) for n in names)


def test_the_catalogue_is_cheap_to_import_inside_locust() -> None:
    script = (
        "import sys, harness.observe.metrics\n"
        "heavy = ('docker', 'httpx', 'requests', 'pydantic', 'prometheus_client', 'yaml')\n"
        "print([m for m in sys.modules if m.split('.')[0] in heavy])\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


METRIC_WORD = re.compile(r"harness_[a-z0-9_]+")
SUFFIXES = ("_total", "_seconds", "_bucket", "_count", "_sum")


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def test_no_module_spells_a_metric_name_but_the_catalogue() -> None:
    """String literals (docstrings aside) naming a harness metric: a catalogue name, or any
    `harness_…` word with a metric's suffix. Context keys such as `harness_user` are no metric."""
    names = tuple(m.name for m in metrics.ALL)
    bare = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "observe" / "metrics.py":
            continue
        tree = ast.parse(path.read_text())
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            if id(node) in docs:
                continue
            for word in METRIC_WORD.findall(node.value):
                if word.startswith(names) or word.endswith(SUFFIXES):
                    bare.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {word}")
    assert not bare, "use harness.observe.metrics instead:\n" + "\n".join(bare)
