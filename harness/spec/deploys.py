"""Validation of deploy steps (`rolling_restart`, `deploy`) and the `canary` assertion: what the
schema cannot see because it needs the rest of the topology (which LB drains a service, how
many replicas a batch may take, whether a canary leaves stable nodes to compare with)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.roles import Role, kinds_of, kinds_where
from harness.spec.files import FileProblem, is_php_app, probe
from harness.spec.models import Topology

Loc = tuple[Any, ...]
DRAINING_KINDS = kinds_where(drains=True)  # LBs the harness can take a backend out of
APP_KINDS = kinds_of(Role.WEB, Role.APP_POOL)  # what a deploy replaces the app of


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"did you mean '{close[0]}'?" if close else f"known: {', '.join(choices) or 'none'}"


def lbs_of(topo: Topology, service: str) -> list[str]:
    """LB services (of a kind that can drain) whose backends are `service`."""
    return [
        n
        for n, s in topo.services.items()
        if s.kind in DRAINING_KINDS and getattr(s, "backends", None) == service
    ]


def check_step(
    topo: Topology, loc: Loc, kind: str, p: Any, base_dir: Path
) -> Iterator[tuple[Loc, str]]:
    names = sorted(topo.services)
    if p.service not in topo.services:
        yield loc + ("service",), f"unknown service '{p.service}' ({_hint(p.service, names)})"
        return
    svc = topo.services[p.service]
    lbs = lbs_of(topo, p.service)
    if p.drain and not lbs:
        yield (
            loc + ("drain",),
            f"'{p.service}' ({svc.kind}) is behind no haproxy or nginx-lb, so nothing can drain "
            "it (set drain: false, or restart a service an LB lists in backends:)",
        )
    if isinstance(p.batch, int) and p.batch > svc.replicas:
        yield (
            loc + ("batch",),
            f"batch: {p.batch} but '{p.service}' has {svc.replicas} "
            f"replica{'s' if svc.replicas > 1 else ''} (use at most {svc.replicas}, or batch: all)",
        )
    if kind != "deploy":
        return
    if svc.kind not in APP_KINDS:
        apps = [n for n, s in topo.services.items() if s.kind in APP_KINDS]
        yield (
            loc + ("service",),
            f"'{p.service}' is a {svc.kind} service; a deploy replaces the PHP app of a web or "
            f"php-fpm service ({_hint(p.service, apps)})",
        )
    if p.app is not None:
        yield from _check_app(loc + ("app",), p.app, base_dir)
    else:
        yield from _check_image(loc + ("image",), p.image)
    if p.strategy == "canary":
        if p.weight is None:
            yield (
                loc + ("weight",),
                "a canary needs its share of the traffic (add e.g. weight: 10%)",
            )
        if not lbs:
            yield (
                loc + ("strategy",),
                f"a canary gets its weight on the LB, and '{p.service}' is behind no haproxy or "
                "nginx-lb (put it behind one, or use strategy: rolling)",
            )
        if p.canaries >= svc.replicas:
            most = svc.replicas - 1
            fix = f"use canaries: {most} at most" if most else "add replicas"
            yield (
                loc + ("canaries",),
                f"canaries: {p.canaries} leaves no stable '{p.service}' node to compare with "
                f"({fix})",
            )
    elif p.weight is not None:
        yield (
            loc + ("weight",),
            "weight: is the share of a canary (add strategy: canary, or remove weight:)",
        )


def _check_app(loc: Loc, app: str, base_dir: Path) -> Iterator[tuple[Loc, str]]:
    root = base_dir / app
    try:
        kind = probe(root)
    except FileProblem as exc:
        yield loc, exc.message
        return
    if kind != "dir":
        yield (
            loc,
            f"no directory {root} (give the new version's PHP app, relative to the topology file)",
        )
        return
    if is_php_app(root):
        return
    yield loc, f"{root} has no index.php or public/index.php (give your app's directory)"


def _check_image(loc: Loc, image: str) -> Iterator[tuple[Loc, str]]:
    """The image must be on this machine: a deploy recreates nodes from it mid-run, and there is
    no registry to pull from. Without a reachable engine (`harness validate` anywhere) the run's
    own start-up finds that out first."""
    import docker  # lazily: validating needs no engine otherwise
    from docker.errors import DockerException, ImageNotFound

    try:
        docker.from_env().images.get(image)
    except ImageNotFound:
        yield (
            loc,
            f"no image '{image}' on this machine, and there is no registry to pull it from "
            f"(build or tag it first: docker build -t {image} DIR)",
        )
    except DockerException:
        return


def check_canary(topo: Topology, loc: Loc, p: Any) -> Iterator[tuple[Loc, str]]:
    names = sorted(topo.services)
    if p.service not in topo.services:
        yield loc + ("service",), f"unknown service '{p.service}' ({_hint(p.service, names)})"
        return
    steps = [
        s
        for s in topo.chaos
        if s.fault.deploy is not None
        and s.fault.deploy.strategy == "canary"
        and s.fault.deploy.service == p.service
    ]
    if p.fault is not None:
        named = [s.name for s in steps]
        if p.fault not in named:
            yield (
                loc + ("fault",),
                f"no canary deploy step '{p.fault}' on '{p.service}' ({_hint(p.fault, named)})",
            )
    elif not steps:
        yield (
            loc,
            f"canary compares a canary deploy of '{p.service}' with its stable nodes, and no "
            f"chaos step deploys one (add a step with deploy: {{service: {p.service}, app: ..., "
            "strategy: canary, weight: 10%})",
        )
