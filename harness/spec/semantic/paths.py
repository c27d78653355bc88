"""The files a topology names: configs, apps, and the regression baseline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.spec.files import FileProblem, is_php_app, probe
from harness.spec.models import Topology
from harness.spec.semantic.common import NO_DEFAULT_CONFIG, Loc, file_problem


def check_config(name: str, svc: Any, base_dir: Path) -> Iterator[tuple[Loc, str]]:
    if isinstance(svc.config, str):
        if svc.kind in NO_DEFAULT_CONFIG:
            yield (
                ("services", name, "config"),
                (
                    f"kind {svc.kind} has no default config file (write config: {{/path/in/container: {svc.config}}})"
                ),
            )
        else:
            problem = file_problem(base_dir, svc.config)
            if problem:
                yield ("services", name, "config"), problem
    elif isinstance(svc.config, dict):
        for dest, src in svc.config.items():
            if not dest.startswith("/"):
                yield (
                    ("services", name, "config", dest),
                    "the container path must be absolute (start it with /)",
                )
            elif dest.rstrip("/") == "" or dest.endswith("/"):
                yield (
                    ("services", name, "config", dest),
                    "the container path names a directory; a config is a file (write e.g. /etc/app/app.conf)",
                )
            problem = file_problem(base_dir, src)
            if problem:
                yield ("services", name, "config", dest), problem


def check_app(name: str, app: str, base_dir: Path) -> Iterator[tuple[Loc, str]]:
    problem = file_problem(base_dir, app, "dir")
    if problem is not None:
        if problem.startswith("no directory"):
            problem = problem.replace(
                "(paths are relative to the topology file)",
                "(give the path of your PHP app, relative to the topology file)",
            )
        yield ("services", name, "app"), problem
        return
    root = base_dir / app
    if is_php_app(root):
        return
    yield (
        ("services", name, "app"),
        f"{root} has no index.php or public/index.php, so it is not a PHP app and would be "
        "copied into every container for nothing (give your app's directory, or app: builtin)",
    )


def check_baseline(topo: Topology, base_dir: Path) -> Iterator[tuple[Loc, str]]:
    """`compare.baseline`: a run directory with a journal.json, or the journal itself."""
    if topo.compare is not None and topo.compare.baseline is not None:
        baseline = base_dir / topo.compare.baseline
        try:
            kind = probe(baseline)
            journal = probe(baseline / "journal.json") if kind == "dir" else None
        except FileProblem as exc:
            yield ("compare", "baseline"), exc.message
            kind = journal = "file"
        if kind == "missing":
            yield (
                ("compare", "baseline"),
                f"no run directory or journal.json at {baseline} "
                "(paths are relative to the topology file; runs are under runs/<run-id>/)",
            )
        elif kind == "dir" and journal != "file":
            yield (
                ("compare", "baseline"),
                f"{baseline} has no journal.json (give a run directory, runs/<run-id>, "
                "or its journal.json)",
            )
        elif kind not in ("dir", "file"):
            yield (
                ("compare", "baseline"),
                f"{baseline} is {kind} (give a run directory, runs/<run-id>, or its journal.json)",
            )
