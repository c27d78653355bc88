"""Warnings: printed, one line each, never failing validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from harness.spec.models import Topology
from harness.spec.semantic.common import APP_KINDS, POOL_KINDS, Loc


def _outside(base_dir: Path, rel: str) -> Path | None:
    """The resolved path when `rel` (relative to the topology file) leaves its directory."""
    try:
        root = base_dir.resolve()
        path = (base_dir / rel).resolve()
    except (OSError, RuntimeError):
        return None
    return None if path == root or root in path.parents else path


def warn_topology(topo: Topology, base_dir: Path = Path(".")) -> Iterator[tuple[Loc, str]]:
    """Warnings: printed, one line each, never failing validation."""
    services = topo.services
    for name, svc in services.items():
        sources: list[tuple[Loc, str]] = []
        if isinstance(svc.config, str):
            sources.append((("services", name, "config"), svc.config))
        elif isinstance(svc.config, dict):
            sources += [(("services", name, "config", d), src) for d, src in svc.config.items()]
        app = getattr(svc, "app", "builtin")
        if app != "builtin":
            sources.append((("services", name, "app"), app))
        for loc, rel in sources:
            outside = _outside(base_dir, rel)
            if outside is not None:
                yield (
                    loc,
                    f"{outside} is outside the topology's directory {base_dir.resolve()}: it is "
                    "copied into the containers, and the topology will not run from another "
                    "checkout (copy the file next to the topology file)",
                )
        if svc.kind in POOL_KINDS and getattr(svc, "pm", "static") != "dynamic":
            ignored = [
                f
                for f in ("start_servers", "min_spare_servers", "max_spare_servers")
                if f in svc.model_fields_set
            ]
            if ignored:
                yield (
                    ("services", name, ignored[0]),
                    f"{', '.join(ignored)} only apply to pm: dynamic, and this pool is pm: "
                    f"{getattr(svc, 'pm', 'static')} (remove them, or set pm: dynamic)",
                )
    yield from _warn_file_sessions(topo)
    yield from _warn_overload(topo)


def _warn_overload(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """HAProxy's per-server maxconn above the pool behind it: the excess waits in PHP-FPM's
    listen queue, where HAProxy's timeout_queue cannot turn it away (it stalls instead)."""
    for name, svc in topo.services.items():
        maxconn = getattr(svc, "maxconn", None)
        backend = topo.services.get(getattr(svc, "backends", None) or "")
        workers = getattr(backend, "max_children", None)
        if maxconn and workers and maxconn > workers:
            yield (
                ("services", name, "maxconn"),
                f"maxconn: {maxconn} lets more requests reach each node than its PHP-FPM pool "
                f"has workers (max_children: {workers}); the rest wait in PHP-FPM's listen "
                f"queue, where timeout_queue cannot turn them away (use maxconn: {workers})",
            )


def _warn_file_sessions(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """A session check against sessions kept in files on each node: expected to fail."""
    checks = [i for i, a in enumerate(topo.assertions) if a.kind == "session_continuity"]
    if not checks:
        return
    services = topo.services
    for name, svc in services.items():
        if svc.kind not in APP_KINDS or getattr(svc, "sessions", "redis") != "files":
            continue
        if svc.replicas < 2:
            continue
        lbs = [s for s in services.values() if getattr(s, "backends", None) == name]
        sticky = lbs and all(
            getattr(lb, "cookie", False) or getattr(lb, "balance", "") in ("source", "ip_hash")
            for lb in lbs
        )
        if sticky:
            continue
        yield (
            ("assertions", checks[0], "session_continuity"),
            f"'{name}' keeps sessions in files on each of its {svc.replicas} nodes and no LB "
            "in front is sticky, so sessions are lost whenever a request lands on another node: "
            "expected to fail (use sessions: redis, or cookie: true on the haproxy)",
        )
