"""Cross-reference checks pydantic cannot do alone: dangling names, cycles (declared and
implicit), name and address clashes, the files a run needs, kinds that need peers, and the
semantic nonsense a schema cannot see (a count above the replicas, overlapping windows on one
target, a session check against per-node sessions).

`check_topology` and `check_merged` yield errors; `warn_topology` yields
warnings (printed, one line each, never failing validation); `check_plan` builds the run's
plan once validation has passed, so that what validation accepts the plan can build.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.roles import Role, kinds_of, kinds_where, restartable
from harness.spec import deploys, graph
from harness.spec.addresses import (
    EXAMPLE_SUBNET,
    FIRST_HOST,
    AddressError,
    capacity_message,
    count,
)
from harness.spec.compare import is_duration
from harness.spec.files import FileProblem, probe
from harness.spec.liveness import instance_names, plan
from harness.spec.models import ASSERTION_KINDS, ChaosStep, Topology, injection_name

Loc = tuple[Any, ...]

LB_KINDS = kinds_of(Role.LOAD_BALANCER)
APP_KINDS = kinds_of(Role.WEB, Role.APP_POOL)
DB_KINDS = kinds_of(Role.DATABASE)
POOL_KINDS = kinds_of(Role.APP_POOL)  # bare FastCGI pools
GATEWAY_KINDS = kinds_where(discovers=True)  # LBs whose servers come from a registry
REGISTRY_KINDS = kinds_of(Role.REGISTRY)
# what an LB's HTTP backends may be (an edge LB balances gateways: the two-level LB)
HTTP_KINDS = kinds_of(Role.WEB, Role.CUSTOM) + GATEWAY_KINDS
CACHE_KINDS = kinds_of(Role.CACHE)
REPLICATING = kinds_where(replicates=True)  # replicas: N is a primary and its replicas
BRING_IMAGE = kinds_where(role=Role.DATABASE, builtin_image=False)  # Debian ships no server
NO_DEFAULT_CONFIG = kinds_where(default_config=False)  # `config:` must name its path
SUBNET_POOL = (
    "10.213.0.0/16"  # where the run's /24 comes from without network.subnet (runtime/stack.py)
)
HARNESS_ROOT = Path(__file__).resolve().parents[2]  # where the built-in locustfiles/ live
MAX_VRRP_GROUPS = 205  # keepalived.conf: virtual_router_id 51, 52, ... up to 255
SINGLETONS = kinds_where(singleton=True)  # the harness runs one of each, with one container
# Processes process_kill can start again (harness/chaos/process_kill.py RESTART), and the built-in
# kinds they run in (images/lb/supervise.sh, images/web/supervise.sh): harness/roles.py.
RESTARTABLE = restartable()
# Which fields each toxic takes (harness/chaos/toxic.py), the first one required.
TOXIC_FIELDS = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slow_close": ("delay",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
    "down": (),
}
TOXIC_REQUIRED = {
    "latency": "latency",
    "bandwidth": "rate",
    "slicer": "average_size",
    "limit_data": "bytes",
}
TOXIC_COMMON = ("link", "stream", "toxicity")


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'?"
    return f"known: {', '.join(choices)}" if choices else "declare it first"


def _check_lb(topo: Topology, name: str, svc: Any, names: list[str]) -> Iterator[tuple[Loc, str]]:
    services = topo.services
    if svc.backends not in services:
        yield (
            ("services", name, "backends"),
            f"unknown service '{svc.backends}' ({_hint(svc.backends, names)})",
        )
    else:
        backend_kind = services[svc.backends].kind
        fastcgi = getattr(svc, "protocol", "http") == "fastcgi"
        fpm = [n for n, s in services.items() if s.kind in POOL_KINDS]
        http = [n for n, s in services.items() if s.kind in HTTP_KINDS and n != name]
        if fastcgi and backend_kind not in POOL_KINDS:
            fix = (
                f"use {' or '.join(fpm)}" if fpm else "add a php-fpm service, or use protocol: http"
            )
            yield (
                ("services", name, "backends"),
                f"protocol: fastcgi needs a php-fpm service, '{svc.backends}' is {backend_kind} ({fix})",
            )
        elif not fastcgi and backend_kind not in HTTP_KINDS:
            if backend_kind in POOL_KINDS:
                fix = "use an nginx-lb with protocol: fastcgi"
            elif http:
                fix = f"name the web service, e.g. backends: {http[0]}"
            else:
                fix = "add a web service and name it here"
            yield (
                ("services", name, "backends"),
                f"HTTP backends must be web or custom, '{svc.backends}' is {backend_kind} ({fix})",
            )
        for inst in getattr(svc, "weights", {}):
            if inst not in instance_names(svc.backends, services[svc.backends].replicas):
                known = instance_names(svc.backends, services[svc.backends].replicas)
                yield (
                    ("services", name, "weights", inst),
                    f"'{inst}' is not an instance of {svc.backends} (use one of {', '.join(known)})",
                )
    if svc.keepalived and svc.replicas < 2:
        yield ("services", name, "keepalived"), "a VIP needs at least 2 replicas (set replicas: 2)"


def _check_limits(name: str, svc: Any) -> Iterator[tuple[Loc, str]]:
    """Overload settings that could never apply (issue 13)."""
    if getattr(svc, "timeout_queue", None) is not None and svc.maxconn is None:
        yield (
            ("services", name, "timeout_queue"),
            "a server without maxconn never queues a request, so timeout_queue would never "
            "apply (add maxconn: N, e.g. the web node's PHP-FPM max_children)",
        )
    limits = getattr(svc, "limit_req", None) or getattr(svc, "limit_conn", None)
    if "limit_status" in svc.model_fields_set and not limits:
        yield (
            ("services", name, "limit_status"),
            "no limit_req or limit_conn is set, so nothing is ever rejected (add "
            "limit_req: {rate: N} or limit_conn: N, or remove limit_status)",
        )


def _check_db(name: str, svc: Any) -> Iterator[tuple[Loc, str]]:
    """Replication and a database VIP (the built-in MariaDB image sets both up)."""
    repl = svc.replication
    if svc.kind not in REPLICATING and (svc.replicas > 1 or repl is not None):
        yield (
            ("services", name, "replication" if repl is not None else "replicas"),
            "replication is set up by the built-in MariaDB image (use kind: mariadb, "
            "or replicas: 1 without replication:)",
        )
    elif repl is not None and repl.mode == "semi_sync" and svc.replicas < 2:
        yield (
            ("services", name, "replication", "mode"),
            f"semi_sync makes the primary wait for a replica's acknowledgement, and '{name}' has "
            "no replica (set replicas: 2, or mode: async)",
        )
    if svc.keepalived is not None and svc.replicas < 2:
        yield (
            ("services", name, "keepalived"),
            "a database VIP moves to a replica, and there is none (set replicas: 2)",
        )


def _check_redis(name: str, svc: Any) -> Iterator[tuple[Loc, str]]:
    """Sentinel runs one per instance and needs a majority that survives a dead master."""
    if svc.sentinel is not None:
        if svc.replicas < 3:
            yield (
                ("services", name, "sentinel"),
                f"Sentinel runs beside each instance, so '{name}' would have {svc.replicas} "
                "Sentinel(s), and fewer than 3 cannot outvote a dead master's (set replicas: 3)",
            )
        elif svc.sentinel.quorum > svc.replicas:
            yield (
                ("services", name, "sentinel", "quorum"),
                f"a quorum of {svc.sentinel.quorum} needs more Sentinels than the {svc.replicas} "
                f"'{name}' runs (set quorum: {svc.replicas // 2 + 1})",
            )
        if svc.keepalived is None:
            yield (
                ("services", name, "sentinel"),
                "the app reaches the master through a VIP that follows it "
                "(add keepalived: {vip: auto})",
            )
    elif svc.keepalived is not None:
        yield (
            ("services", name, "keepalived"),
            "a Redis VIP follows the master Sentinel elects (add sentinel: {quorum: 2})",
        )


def _file_problem(base_dir: Path, rel: str, want: str = "file") -> str | None:
    """Why `rel` (relative to the topology file) is not a readable `want` ('file' or 'dir')."""
    path = base_dir / rel
    try:
        kind = probe(path)
    except FileProblem as exc:
        return exc.message
    if kind == want:
        return None
    if kind == "missing":
        noun = "directory" if want == "dir" else "file"
        return f"no {noun} {path} (paths are relative to the topology file)"
    if want == "dir":
        return (
            f"{path} is {'a file' if kind == 'file' else kind}, not a directory (give a directory)"
        )
    what = "a directory" if kind == "dir" else kind
    return f"{path} is {what}, not a regular file (give the path of a file)"


def _check_config(name: str, svc: Any, base_dir: Path) -> Iterator[tuple[Loc, str]]:
    if isinstance(svc.config, str):
        if svc.kind in NO_DEFAULT_CONFIG:
            yield (
                ("services", name, "config"),
                (
                    f"kind {svc.kind} has no default config file (write config: {{/path/in/container: {svc.config}}})"
                ),
            )
        else:
            problem = _file_problem(base_dir, svc.config)
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
            problem = _file_problem(base_dir, src)
            if problem:
                yield ("services", name, "config", dest), problem


def _check_app(name: str, app: str, base_dir: Path) -> Iterator[tuple[Loc, str]]:
    problem = _file_problem(base_dir, app, "dir")
    if problem is not None:
        if problem.startswith("no directory"):
            problem = problem.replace(
                "(paths are relative to the topology file)",
                "(give the path of your PHP app, relative to the topology file)",
            )
        yield ("services", name, "app"), problem
        return
    root = base_dir / app
    for entry in ("public/index.php", "index.php"):
        try:
            if probe(root / entry) == "file":
                return
        except FileProblem:
            continue
    yield (
        ("services", name, "app"),
        f"{root} has no index.php or public/index.php, so it is not a PHP app and would be "
        "copied into every container for nothing (give your app's directory, or app: builtin)",
    )


def _check_names(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """Service names the harness uses itself, kinds it runs once, and container names twice."""
    services = topo.services
    for name, svc in services.items():
        if name in graph.AUTO_SERVICES and svc.kind != name:
            yield (
                ("services", name),
                f"'{name}' is the name of the {name} the harness adds to every run"
                + (" with links:" if name == graph.TOXIPROXY else "")
                + f", so this {svc.kind} service would be replaced or clash with it (rename it)",
            )
    for kind in SINGLETONS:
        of_kind = [n for n, s in services.items() if s.kind == kind]
        for extra in of_kind[1:]:
            yield (
                ("services", extra, "kind"),
                f"a run has one {kind}, and '{of_kind[0]}' already is it (remove this one)",
            )
        for n in of_kind:
            if services[n].replicas != 1:
                yield (
                    ("services", n, "replicas"),
                    f"the harness runs one {kind} container (remove replicas, or set replicas: 1)",
                )
    owner: dict[str, str] = {}
    for name, svc in services.items():
        for inst in instance_names(name, svc.replicas):
            owner.setdefault(inst, name)
    for name, svc in services.items():
        clash = next((i for i in instance_names(name, svc.replicas) if owner[i] != name), None)
        if clash is not None:
            yield (
                ("services", name),
                f"its container '{clash}' would have the name of a container of "
                f"'{owner[clash]}': two containers cannot share a name and an address "
                f"(rename '{name}')",
            )
        elif name in owner and owner[name] != name:
            yield (
                ("services", name),
                f"'{name}' is also the name of a container of '{owner[name]}', so a fault "
                f"on '{name}' would be ambiguous (rename '{name}')",
            )


def _check_links(topo: Topology) -> Iterator[tuple[Loc, str]]:
    services = topo.services
    seen: dict[tuple[str, str], int] = {}
    for i, link in enumerate(topo.links):
        if link.from_ == link.to:
            # mariadb -> itself is the replication channel: replicas reach the primary through it
            svc = services.get(link.to)
            if svc is None or svc.kind not in REPLICATING or svc.replicas < 2:
                yield (
                    ("links", i, "to"),
                    f"a link from '{link.from_}' to itself carries no traffic (point it at the "
                    "database or redis; only a replicated mariadb links to itself, for its "
                    "replication channel)",
                )
        elif link.from_ in services and services[link.from_].kind not in APP_KINDS:
            yield (
                ("links", i, "from"),
                f"links go from the app's nodes (web or php-fpm), and '{link.from_}' is "
                f"{services[link.from_].kind}, which never connects to '{link.to}' (use the web service)",
            )
        key = (link.from_, link.to)
        if key in seen:
            yield (
                ("links", i),
                f"a second link {link.from_}->{link.to} would put two proxies on one connection "
                f"(remove it: links[{seen[key]}] already is {link.from_}->{link.to})",
            )
        seen.setdefault(key, i)


def _check_cycle(topo: Topology) -> Iterator[tuple[Loc, str]]:
    full = graph.with_auto_services(topo)
    cycle = graph.find_cycle(full)
    if not cycle:
        return
    declared = [e for e in cycle if e.index is not None]
    if declared:  # report it where the user can break it: a depends_on entry
        # the one that goes against what the kinds imply (a database depending on its LB),
        # else the last one declared
        against = [e for e in declared if _implied(full, e.needs, e.service)]
        order = list(topo.services)
        pick = against[0] if against else max(declared, key=lambda e: order.index(e.service))
        k = cycle.index(pick)
        cycle = cycle[k:] + cycle[:k]
    first = cycle[0]
    names = [e.service for e in cycle] + [cycle[0].service]
    if len(cycle) > 8:  # a long chain: its ends, and how long it is
        path = " -> ".join(names[:4] + ["..."] + names[-3:]) + f" ({len(cycle)} services)"
    else:
        path = " -> ".join(names)
    reasons = [e.why for e in cycle[1:]] if first.index is not None else [e.why for e in cycle]
    why = f" ({'; '.join(reasons)})" if reasons and len(cycle) <= 8 else ""
    if first.index is not None:
        loc: Loc = ("services", first.service, "depends_on", first.index)
        fix = f"remove '{first.needs}' from {first.service}'s depends_on"
    else:
        loc, fix = ("services", first.service), "break it"
    yield loc, f"dependency cycle {path}{why} ({fix})"


def _implied(topo: Topology, start: str, goal: str) -> bool:
    """Whether `start` waits for `goal` through implicit edges alone (no depends_on)."""
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for e in graph.edges(topo, node):
            if e.index is None and e.needs not in seen:
                if e.needs == goal:
                    return True
                seen.add(e.needs)
                todo.append(e.needs)
    return False


def _check_addresses(topo: Topology) -> Iterator[tuple[Loc, str]]:
    full = graph.with_auto_services(topo)
    subnet = topo.network.subnet or EXAMPLE_SUBNET
    net = ipaddress.IPv4Network(subnet)
    containers, vips = count(full)
    usable = max(0, net.num_addresses - 1 - FIRST_HOST)
    if containers + vips > usable:
        loc: Loc = ("network", "subnet") if topo.network.subnet else ("services",)
        yield loc, capacity_message(containers, vips, net, usable)
    if vips > MAX_VRRP_GROUPS:
        yield (
            ("services",),
            f"{vips} services have a VIP, but VRRP router ids 51 to 255 give room for "
            f"{MAX_VRRP_GROUPS} (give at most {MAX_VRRP_GROUPS} services a keepalived:)",
        )


def check_topology(
    topo: Topology, base_dir: Path = Path("."), allow_external_target: bool = False
) -> Iterator[tuple[Loc, str]]:
    """Every problem of one file's topology; `allow_external_target` lets load.url leave the
    run's network (harness run --allow-external-target)."""
    services = topo.services
    names = sorted(services)
    instances = sorted(i for n, s in services.items() for i in instance_names(n, s.replicas))

    yield from _check_names(topo)
    for name, svc in services.items():
        for i, dep in enumerate(svc.depends_on):
            if dep not in services:
                yield (
                    ("services", name, "depends_on", i),
                    f"unknown service '{dep}' ({_hint(dep, names)})",
                )
            elif dep == name:
                yield (
                    ("services", name, "depends_on", i),
                    "a service cannot depend on itself (remove it)",
                )
            elif dep in svc.depends_on[:i]:
                yield (
                    ("services", name, "depends_on", i),
                    f"'{dep}' is listed twice (remove one)",
                )
        if svc.kind in POOL_KINDS:
            yield from _check_pool(name, svc)
        if svc.kind in GATEWAY_KINDS:
            yield from _check_gateway(topo, name, svc, names)
        elif svc.kind in LB_KINDS:
            yield from _check_lb(topo, name, svc, names)
            yield from _check_limits(name, svc)
        if svc.kind in DB_KINDS:
            yield from _check_db(name, svc)
        if svc.kind in CACHE_KINDS:
            yield from _check_redis(name, svc)
        if svc.kind in kinds_of(Role.WEB):
            yield from _check_db_reads(topo, name, svc)
        keepalived = getattr(svc, "keepalived", None)  # any load-balancer kind may carry a VIP
        if keepalived is not None and keepalived.vip != "auto":
            yield from _check_vip(topo, name, keepalived.vip)
        if svc.kind in APP_KINDS:
            app_svc: Any = svc
            if app_svc.sessions == "redis" and not any(
                s.kind in CACHE_KINDS for s in services.values()
            ):
                yield (
                    ("services", name, "sessions"),
                    "sessions: redis needs a service of kind redis (add one, or use files)",
                )
            if not any(s.kind in DB_KINDS for s in services.values()):
                yield (
                    ("services", name, "kind"),
                    "the PHP app needs a service of kind mariadb or mysql (add one)",
                )
            if app_svc.app != "builtin":
                yield from _check_app(name, app_svc.app, base_dir)
        if svc.kind in BRING_IMAGE and svc.image is None:
            yield (
                ("services", name, "image"),
                "Debian ships no MySQL server (set image: to your MySQL image, or use kind: mariadb)",
            )
        yield from _check_config(name, svc, base_dir)

    for i, link in enumerate(topo.links):
        for end in ("from", "to"):
            peer = link.from_ if end == "from" else link.to
            if peer not in services:
                yield ("links", i, end), f"unknown service '{peer}' ({_hint(peer, names)})"
        if link.to in services and services[link.to].kind not in graph.DATA_KINDS:
            yield (
                ("links", i, "to"),
                "links can go to a mariadb, mysql or redis service (point it at the app's database or redis)",
            )
    yield from _check_links(topo)
    yield from _check_cycle(topo)
    yield from _check_addresses(topo)
    yield from _check_load(topo, base_dir, instances, allow_external_target)
    from harness.spec import hostsrt

    yield from hostsrt.check(topo)

    if topo.load.min_workers is not None and topo.load.min_workers > topo.load.total_workers:
        yield (
            ("load", "min_workers"),
            f"{topo.load.min_workers} is more than the {topo.load.total_workers} worker(s) the "
            "load has (workers plus master.remote_workers): lower min_workers or add workers",
        )
    if topo.load.target is not None and topo.load.target not in services:
        yield (
            ("load", "target"),
            f"unknown service '{topo.load.target}' ({_hint(topo.load.target, names)})",
        )
    elif topo.load.target is not None and services[topo.load.target].kind in graph.AUTO_SERVICES:
        yield (
            ("load", "target"),
            f"'{topo.load.target}' is the harness's own {services[topo.load.target].kind}, not "
            "part of the stack under test (target a load balancer or web service)",
        )
    if (
        topo.load.target is None
        and topo.load.url is None
        and not any(s.kind in LB_KINDS for s in services.values())
    ):
        yield (
            ("load",),
            "no load balancer to send load to (add a haproxy or nginx-lb service, or set load.target)",
        )

    seen: dict[str, ChaosStep] = {}
    for i, step in enumerate(topo.chaos):
        if step.name in seen:
            yield ("chaos", i, "name"), f"duplicate step name '{step.name}' (names must be unique)"
        seen.setdefault(step.name, step)
        if step.at >= topo.load.duration:
            yield (
                ("chaos", i, "at"),
                (
                    f"{step.at:g}s is not before the end of the load at {topo.load.duration:g}s "
                    "(move it earlier or lengthen load.duration)"
                ),
            )
        else:
            yield from _check_timing(topo, i, step)
        yield from _check_fault(topo, i, step, names, instances)
        if step.fault.kind in ("rolling_restart", "deploy"):  # issue 13
            loc = ("chaos", i, "fault", step.fault.kind)
            yield from deploys.check_step(topo, loc, step.fault.kind, step.fault.params, base_dir)

    titles: set[str] = set()
    for i, a in enumerate(topo.assertions):
        if a.title in titles:
            yield ("assertions", i), f"duplicate assertion '{a.title}' (give it a unique name:)"
        titles.add(a.title)
        if a.during == "calm" and a.kind not in ("error_budget", "session_continuity"):
            yield (
                ("assertions", i, "during"),
                f"calm (every moment outside the fault windows) is made of several stretches, "
                f"which only counts can be summed over; {a.kind} cannot (use steady or recovery)",
            )
        if a.during.startswith("fault:"):
            _, problem = resolve_fault_ref(a.during[6:], seen, "fault:")
            if problem:
                yield ("assertions", i, "during"), problem
        yield from _check_assertion(topo, i, a, names, seen, base_dir)

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


_REPEAT_REF = re.compile(r"^(?P<name>.*?)\s*#(?P<k>\d+)$")


def resolve_fault_ref(
    ref: str, steps: dict[str, ChaosStep], prefix: str = ""
) -> tuple[str | None, str | None]:
    """(the injection's name as the schedule journals it, problem): `NAME` is the step's first
    injection, `NAME#2` or `NAME #2` its second (for a step with repeat: 2 or more)."""
    ref = ref.strip()
    if ref in steps:
        return ref, None
    m = _REPEAT_REF.match(ref)
    if m and m["name"] in steps:
        name, k, repeat = m["name"], int(m["k"]), steps[m["name"]].repeat
        if 1 <= k <= repeat:
            return injection_name(name, k), None
        if repeat == 1:
            return None, (
                f"step '{name}' is injected once, so it has no #{k} "
                f"(write {prefix}{name}, or give the step repeat: {max(k, 2)})"
            )
        return None, (
            f"step '{name}' is injected {repeat} times, so it has no #{k} "
            f"(use #1 to #{repeat}, e.g. {prefix}{name}#{repeat})"
        )
    return None, f"no chaos step named '{ref}' ({_hint(ref, sorted(steps))})"


def _check_timing(topo: Topology, i: int, step: ChaosStep) -> Iterator[tuple[Loc, str]]:
    """Every injection fires, and every judged window ends, before the load ends: a fault (or
    the span a kill is judged over) that outlives the load would be judged against no traffic."""
    load_end = topo.load.duration
    last_at = step.injections()[-1][0]
    n = step.repeat
    if last_at >= load_end:
        when = "after" if last_at > load_end else "as"
        yield (
            ("chaos", i, "repeat"),
            f"injection #{n} would fire at {last_at:g}s, {when} the load ends at {load_end:g}s, "
            "so it would never run (lower repeat: or every:, or lengthen load.duration)",
        )
        return
    span, key = (step.for_, "for") if step.for_ is not None else (step.window, "window")
    if span is None:
        return
    end = last_at + span
    if end >= load_end:
        what = "the fault" if key == "for" else "the window it is judged over"
        if n > 1:
            what = f"{'its' if key == 'for' else 'the window of its'} last injection (#{n})"
        when = "after" if end > load_end else "as"
        fix = f"shorten {key}:" if n == 1 else f"shorten {key}:, every: or repeat:,"
        yield (
            ("chaos", i, key),
            f"{what} ends at {end:g}s, {when} the load ends at {load_end:g}s: the fault would be "
            f"judged against no traffic ({fix} or lengthen load.duration)",
        )


def check_merged(
    topo: Topology, titles: Iterable[str] = (), require_assertions: bool = True
) -> Iterator[tuple[Loc, str]]:
    """Checks of the topology as it will run, after its experiments are merged in and picked:
    at least one assertion, no step hitting a container an earlier step removed, injection
    names that tell steps apart, and `compare.tolerance` keys (`titles`: every assertion name
    the tolerances may refer to, also of experiments not picked)."""
    if require_assertions and not topo.assertions:
        fix = (
            "add one under assertions:, or pick an experiment that brings some"
            if topo.experiments
            else "add at least one, e.g. - error_budget: {max_error_ratio: 0.01}"
        )
        yield (
            ("assertions",),
            f"a topology with no assertions can never fail, so it gates nothing ({fix})",
        )
    by_key = {_key(s.name): s.name for s in topo.chaos}
    for step in topo.chaos:
        for _, name in step.injections()[1:]:
            other = by_key.get(_key(name))
            if other is not None:
                j = next(j for j, s in enumerate(topo.chaos) if s.name == other)
                yield (
                    ("chaos", j, "name"),
                    f"'{other}' is also what injection {name[len(step.name) :].strip()} of step "
                    f"'{step.name}' is called, so the two cannot be told apart (rename one)",
                )
    for planned in plan(topo):
        if planned.problem is not None:
            where, message = planned.problem
            inj = planned.injection
            prefix = f"injection #{inj.k}: " if inj.k > 1 else ""
            yield ("chaos", inj.index) + where, prefix + message
    yield from _check_overlaps(topo)
    if topo.compare is not None:
        yield from _check_tolerances(topo, list(titles) or [a.title for a in topo.assertions])


def _key(name: str) -> str:
    """`kill #2` and `kill#2` are the same injection to an assertion."""
    return re.sub(r"\s*#(\d+)$", r"#\1", name.strip())


DURATION_KINDS = ("ejection_time", "failover_time", "latency", "recovery_time")


def _check_tolerances(topo: Topology, titles: list[str]) -> Iterator[tuple[Loc, str]]:
    assert topo.compare is not None
    kind_of = {a.title: a.kind for a in topo.assertions}
    known = ["default", *ASSERTION_KINDS, *titles]
    for key, value in topo.compare.tolerance.items():
        loc: Loc = ("compare", "tolerance", key)
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            named = [t for t in titles if t not in ASSERTION_KINDS]
            fix = (
                f"did you mean '{close[0]}'?"
                if close
                else f"use default, an assertion kind such as {ASSERTION_KINDS[2]}"
                + (f", or an assertion's name: {', '.join(named)}" if named else "")
            )
            yield (
                loc,
                f"'{key}' is neither an assertion kind, an assertion's name nor default ({fix})",
            )
            continue
        kind = key if key in ASSERTION_KINDS else kind_of.get(key)
        if kind is not None and kind not in DURATION_KINDS + ("promql",) and is_duration(value):
            yield (
                loc,
                f"'{value}' is a duration, but {kind} is not measured in seconds "
                "(write +N in its own unit or +N%)",
            )


def _check_assertion(
    topo: Topology, i: int, a: Any, names: list[str], steps: dict[str, ChaosStep], base_dir: Path
) -> Iterator[tuple[Loc, str]]:
    loc: Loc = ("assertions", i, a.kind)
    p = a.params
    service = getattr(p, "service", None)
    if a.kind == "ejection_time" and service is not None:
        backends = [getattr(s, "backends", None) for s in topo.services.values()]
        if service not in topo.services:
            yield loc + ("service",), f"unknown service '{service}' ({_hint(service, names)})"
        elif service not in backends:
            yield (
                loc + ("service",),
                f"'{service}' is not behind a load balancer (name the LB's backends service)",
            )
    if a.kind == "failover_time" and (
        service not in topo.services or getattr(topo.services[service], "keepalived", None) is None
    ):
        vip_services = [n for n, s in topo.services.items() if getattr(s, "keepalived", None)]
        yield (
            loc + ("service",),
            f"'{service}' is not a service with a VIP ({_hint(str(service), vip_services)})",
        )
    fault = getattr(p, "fault", None)
    if fault is not None:
        _, problem = resolve_fault_ref(fault, steps, "fault: ")
        if problem:
            yield loc + ("fault",), problem
    if a.kind == "testinfra":
        if p.hosts not in topo.services:
            yield loc + ("hosts",), f"unknown service '{p.hosts}' ({_hint(p.hosts, names)})"
        problem = _file_problem(base_dir, p.module)
        if problem:
            yield loc + ("module",), problem
    if a.kind == "no_lost_writes" and not any(s.kind in DB_KINDS for s in topo.services.values()):
        yield (
            loc,
            "no_lost_writes needs a mariadb or mysql service (add one, e.g. mysql: {kind: mariadb})",
        )
    if a.kind == "replication_lag":
        yield from _check_replication_lag(topo, loc, p)
    if a.kind == "canary":
        yield from deploys.check_canary(topo, loc, p)
    if a.kind == "stale_reads":
        yield from _check_stale_reads(topo, loc)
    if a.kind == "testinfra" and p.hosts in topo.services:
        kind = topo.services[p.hosts].kind
        if kind in graph.AUTO_SERVICES:
            yield (
                loc + ("hosts",),
                f"'{p.hosts}' is the harness's own {kind} (name a service of the stack)",
            )


def _check_replication_lag(topo: Topology, loc: Loc, p: Any) -> Iterator[tuple[Loc, str]]:
    """replication_lag reads the heartbeat of a replicated (built-in) MariaDB."""
    replicated = [
        n
        for n, s in topo.services.items()
        if s.kind in REPLICATING and s.image is None and s.replicas > 1
    ]
    if p.service is None:
        if not replicated:
            yield (
                loc,
                "replication_lag needs a replicated database (give a mariadb service replicas: 2)",
            )
        elif len(replicated) > 1:
            yield (
                loc + ("service",),
                f"{len(replicated)} databases replicate (name one: service: {replicated[0]})",
            )
    elif p.service not in replicated:
        yield (
            loc + ("service",),
            f"'{p.service}' is not a replicated mariadb "
            f"({_hint(p.service, replicated) if replicated else 'give it replicas: 2'})",
        )


def _check_stale_reads(topo: Topology, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """stale_reads measures an app whose read path is declared (`db_reads` on a web service)."""
    if not any(getattr(s, "db_reads", None) for s in topo.services.values()):
        web = next((n for n, s in topo.services.items() if s.kind in kinds_of(Role.WEB)), "web")
        yield (
            loc,
            "stale_reads measures a read/write-split app, and no web service declares its "
            f"read path (add db_reads: replicas to '{web}', or db_reads: primary for the control)",
        )


def _check_db_reads(topo: Topology, name: str, svc: Any) -> Iterator[tuple[Loc, str]]:
    """Reads from replicas need a replicated database to read from."""
    if getattr(svc, "db_reads", None) != "replicas":
        return
    db = next((s for s in topo.services.values() if s.kind in DB_KINDS), None)
    if db is None or db.kind not in REPLICATING or db.replicas < 2:
        yield (
            ("services", name, "db_reads"),
            "db_reads: replicas reads from the database's replicas, and it has none "
            "(give the mariadb service replicas: 2, or set db_reads: primary)",
        )


def _check_vip(topo: Topology, name: str, vip: str) -> Iterator[tuple[Loc, str]]:
    loc: Loc = ("services", name, "keepalived", "vip")
    if topo.runtime == "hosts":  # existing machines: harness/spec/hostsrt.py checks it
        return
    if topo.network.subnet is None:
        yield (
            loc,
            (
                f"an explicit VIP needs network.subnet: the run's /24 is only picked at run time from {SUBNET_POOL} "
                "(add network: {subnet: 10.213.7.0/24} containing it, or write vip: auto)"
            ),
        )
        return
    net = ipaddress.IPv4Network(topo.network.subnet)
    addr = ipaddress.IPv4Address(vip)
    example = net.network_address + 200  # the subnet is a /24 or larger
    if addr not in net:
        yield (
            loc,
            f"{vip} is outside network.subnet {net} (pick an address inside it, e.g. {example})",
        )
    elif addr in (net.network_address, net.broadcast_address, net.network_address + 1):
        role = {net.network_address: "network", net.broadcast_address: "broadcast"}.get(
            addr, "gateway"
        )
        yield loc, f"{vip} is the {role} address of {net} (pick a host address, e.g. {example})"
    elif int(addr) < int(net.network_address) + FIRST_HOST:
        yield (
            loc,
            f"{vip} is among .2 to .{FIRST_HOST - 1} of {net}, which the harness keeps for its "
            f"own use (pick another address, e.g. {example})",
        )
    else:
        others = [
            n
            for n, s in topo.services.items()
            if n != name and getattr(getattr(s, "keepalived", None), "vip", None) == vip
        ]
        if others:
            yield loc, f"{vip} is also the VIP of '{others[0]}' (give each service its own VIP)"


def _check_fault(
    topo: Topology, i: int, step: Any, names: list[str], instances: list[str]
) -> Iterator[tuple[Loc, str]]:
    kind, params = step.fault.kind, step.fault.params
    loc: Loc = ("chaos", i, "fault", kind)
    target = getattr(params, "target", None)
    if isinstance(target, str):
        if target.startswith("vip_holder:"):
            svc = target.split(":", 1)[1]
            if svc not in topo.services or getattr(topo.services[svc], "keepalived", None) is None:
                vip_services = [
                    n for n, s in topo.services.items() if getattr(s, "keepalived", None)
                ]
                yield (
                    loc + ("target",),
                    f"'{svc}' is not a service with a VIP ({_hint(svc, vip_services)})",
                )
        elif target not in instances and target not in names:
            yield (
                loc + ("target",),
                f"unknown container or service '{target}' ({_hint(target, instances + names)})",
            )
    elif target is not None and target.service not in names:
        yield (
            loc + ("target", "service"),
            f"unknown service '{target.service}' ({_hint(target.service, names)})",
        )
    if kind == "vip_failover":
        svc = params.service
        if svc not in topo.services or getattr(topo.services[svc], "keepalived", None) is None:
            vip_services = [n for n, s in topo.services.items() if getattr(s, "keepalived", None)]
            yield (
                loc + ("service",),
                f"'{svc}' is not a service with a VIP ({_hint(svc, vip_services)})",
            )
    link = getattr(params, "link", None)
    if link is not None:
        links = [lk.name for lk in topo.links]
        if link not in links:
            yield loc + ("link",), f"no link '{link}' in links: ({_hint(link, links)})"
        yield from _check_toxic(loc, kind, params)
    yield from _check_target_kind(topo, loc, target)
    if target is not None and not isinstance(target, str):
        if target.count is not None and target.percent is not None:
            yield loc + ("target", "percent"), "count and percent both say how many (keep one)"
        if target.pick == "all" and (target.count is not None or target.percent is not None):
            what = "count" if target.count is not None else "percent"
            yield (
                loc + ("target", what),
                f"pick: all takes every instance, so {what} means nothing (remove it, or "
                "pick: random, first or last)",
            )
    if target is not None and not isinstance(target, str) and target.service in topo.services:
        replicas = topo.services[target.service].replicas
        if target.count is not None and target.count > replicas:
            yield (
                loc + ("target", "count"),
                f"count: {target.count} but '{target.service}' has {replicas} "
                f"replica{'s' if replicas > 1 else ''} (use at most {replicas}, or pick: all)",
            )
    if kind == "process_kill":
        yield from _check_process(topo, loc, params)
    if kind == "heartbeat_freeze":
        yield from _check_heartbeat_freeze(topo, loc, params.target)
    if kind == "partition" and isinstance(params.peers, list):
        for j, peer in enumerate(params.peers):
            if peer not in instances and peer not in names:
                yield (
                    loc + ("peers", j),
                    f"unknown container or service '{peer}' ({_hint(peer, instances + names)})",
                )


def _check_gateway(
    topo: Topology, name: str, svc: Any, names: list[str]
) -> Iterator[tuple[Loc, str]]:
    """A gateway's servers are the instances of `backends` registered in its registry: they
    must be built-in web nodes (their image carries the registration sidecar)."""
    services = topo.services
    registries = [n for n, s in services.items() if s.kind in REGISTRY_KINDS]
    if svc.registry is not None and (
        svc.registry not in services or services[svc.registry].kind not in REGISTRY_KINDS
    ):
        yield (
            ("services", name, "registry"),
            f"'{svc.registry}' is not a registry service ({_hint(svc.registry, registries)})",
        )
    elif svc.registry is None and len(registries) != 1:
        yield (
            ("services", name, "kind"),
            "a gateway discovers its servers in a registry, and there is none (add e.g. "
            "registry: {kind: registry})"
            if not registries
            else f"there are {len(registries)} registries (name one: registry: {registries[0]})",
        )
    backend = services.get(svc.backends)
    webs = [n for n, s in services.items() if s.kind in kinds_of(Role.WEB)]
    if backend is None:
        yield (
            ("services", name, "backends"),
            f"unknown service '{svc.backends}' ({_hint(svc.backends, names)})",
        )
    elif backend.kind not in kinds_of(Role.WEB) or backend.image is not None:
        what = "runs its own image" if backend.kind in kinds_of(Role.WEB) else f"is {backend.kind}"
        yield (
            ("services", name, "backends"),
            f"a gateway's servers register themselves from the built-in web image, and "
            f"'{svc.backends}' {what} ("
            + (f"name a web service, e.g. backends: {webs[0]})" if webs else "add a web service)"),
        )


def _check_heartbeat_freeze(topo: Topology, loc: Loc, target: Any) -> Iterator[tuple[Loc, str]]:
    """Only an instance that registers (a web node a gateway discovers) has heartbeats."""
    name = target if isinstance(target, str) else target.service
    owner = next(
        (n for n, s in topo.services.items() if name == n or name in instance_names(n, s.replicas)),
        None,
    )
    if owner is None:
        return  # an unknown target is reported on its own
    web = kinds_of(Role.WEB)
    discovered = [
        b
        for s in topo.services.values()
        if s.kind in GATEWAY_KINDS
        and (b := getattr(s, "backends", None)) in topo.services
        and topo.services[b].kind in web
    ]
    if owner not in discovered:
        where = loc + (("target",) if isinstance(target, str) else ("target", "service"))
        fix = (
            f"target an instance of {', '.join(str(d) for d in discovered)}"
            if discovered
            else "put a gateway in front of it, or use pause to freeze the whole node"
        )
        yield (
            where,
            f"'{name}' sends no heartbeats: only web instances a gateway discovers register in "
            f"the registry ({fix})",
        )


def _check_pool(name: str, svc: Any) -> Iterator[tuple[Loc, str]]:
    """PHP-FPM refuses to start a dynamic pool unless min_spare <= start <= max_spare <= max_children."""
    if svc.pm != "dynamic":
        return
    loc: Loc = ("services", name)
    if svc.max_spare_servers > svc.max_children:
        yield (
            loc + ("max_spare_servers",),
            f"max_spare_servers: {svc.max_spare_servers} is above max_children: "
            f"{svc.max_children}, and PHP-FPM refuses to start (use at most {svc.max_children})",
        )
    if svc.min_spare_servers > svc.max_spare_servers:
        yield (
            loc + ("min_spare_servers",),
            f"min_spare_servers: {svc.min_spare_servers} is above max_spare_servers: "
            f"{svc.max_spare_servers}, and PHP-FPM refuses to start "
            f"(use at most {svc.max_spare_servers})",
        )
    if svc.start_servers > svc.max_children:
        yield (
            loc + ("start_servers",),
            f"start_servers: {svc.start_servers} is above max_children: {svc.max_children}, "
            f"and PHP-FPM refuses to start (use at most {svc.max_children})",
        )
    elif not svc.min_spare_servers <= svc.start_servers <= svc.max_spare_servers:
        yield (
            loc + ("start_servers",),
            f"start_servers: {svc.start_servers} must lie between min_spare_servers "
            f"({svc.min_spare_servers}) and max_spare_servers ({svc.max_spare_servers}), or "
            f"PHP-FPM refuses to start (use {svc.min_spare_servers} to {svc.max_spare_servers})",
        )


def resolve_locustfile(base_dir: Path, locustfile: str) -> Path | None:
    """Where a locustfile is: relative to the topology file like every other path, else (for
    the built-in `locustfiles/...` and files named from the harness's own directory, as the
    shipped topologies do) relative to the harness's directory. Never the working directory."""
    for root in (base_dir, HARNESS_ROOT):
        path = root / locustfile
        try:
            if probe(path) == "file":
                return path.resolve()
        except FileProblem:
            continue
    return None


def _check_load(
    topo: Topology, base_dir: Path, instances: list[str], allow_external_target: bool
) -> Iterator[tuple[Loc, str]]:
    load = topo.load
    try:
        kind = probe(base_dir / load.locustfile)
    except FileProblem as exc:
        yield ("load", "locustfile"), exc.message
        kind = "file"
    if kind not in ("file", "missing"):
        what = "a directory" if kind == "dir" else kind
        yield (
            ("load", "locustfile"),
            f"{base_dir / load.locustfile} is {what}, not a locustfile (give a Python file)",
        )
    elif resolve_locustfile(base_dir, load.locustfile) is None:
        yield (
            ("load", "locustfile"),
            f"no file {base_dir / load.locustfile} (paths are relative to the topology file; "
            "the built-in ones are locustfiles/session_user.py and locustfiles/mix.py)",
        )
    if load.url is not None and not allow_external_target:
        yield from _check_url(topo, load.url, instances)


def _check_url(topo: Topology, url: str, instances: list[str]) -> Iterator[tuple[Loc, str]]:
    """The load goes only to the run's own containers or loopback, refused here (not after the
    network exists) unless `allow_external_target` (harness run --allow-external-target)."""
    loc: Loc = ("load", "url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        yield (
            loc,
            f"'{url}' is not a URL: {exc} (write e.g. http://lb or http://10.213.7.200:8080/app)",
        )
        return
    host = parts.hostname or ""
    if host == "localhost" or host in instances:
        return
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return
    fix = (
        "use load.target with a service name, or a container's name as the host; "
        "harness run --allow-external-target 'why' allows another host"
    )
    subnet = topo.network.subnet
    if ip is not None and subnet is None:
        yield (
            loc,
            f"{host} is an address, but the run's network is only picked at run time from "
            f"{SUBNET_POOL}, so it may not be the run's (set network.subnet containing it, or {fix})",
        )
    elif ip is None or subnet is None or ip not in ipaddress.ip_network(subnet):
        where = f"inside network.subnet {subnet}" if subnet else "a container of this topology"
        yield (
            loc,
            f"{host} is neither loopback nor {where}: load goes to the run's own stack only ({fix})",
        )


def _check_toxic(loc: Loc, kind: str, params: Any) -> Iterator[tuple[Loc, str]]:
    need = TOXIC_REQUIRED.get(kind)
    if need is not None and getattr(params, need) is None:
        yield loc + (need,), f"{kind} needs {need} (add e.g. {need}: {_example(need)})"
    allowed = set(TOXIC_FIELDS[kind]) | set(TOXIC_COMMON)
    for field in sorted(params.model_fields_set - allowed):
        uses = ", ".join(TOXIC_FIELDS[kind]) or "no setting but link, stream and toxicity"
        yield (
            loc + (field,),
            f"{kind} takes no {field}, it would be ignored (remove it; {kind} takes {uses})",
        )


def _example(field: str) -> str:
    return {"latency": "300ms", "rate": "100", "average_size": "64", "bytes": "1024"}.get(
        field, "1"
    )


def _check_target_kind(topo: Topology, loc: Loc, target: Any) -> Iterator[tuple[Loc, str]]:
    """Faults on the harness's own Prometheus would leave nothing to judge the run with."""
    if target is None:
        return
    name = target if isinstance(target, str) else target.service
    services = topo.services
    owner = next(
        (n for n, s in services.items() if name == n or name in instance_names(n, s.replicas)),
        None,
    )
    if owner is not None and services[owner].kind in kinds_of(Role.OBSERVER):
        where = loc + (("target",) if isinstance(target, str) else ("target", "service"))
        yield (
            where,
            f"'{name}' is the run's Prometheus, which judges the run: a fault on it leaves "
            "nothing to judge with (target a service of the stack)",
        )


def _check_process(topo: Topology, loc: Loc, params: Any) -> Iterator[tuple[Loc, str]]:
    if params.restore and params.process not in RESTARTABLE:
        yield (
            loc + ("process",),
            f"the harness cannot start '{params.process}' again when the window ends "
            f"(use one of {', '.join(RESTARTABLE)}, or set restore: false to leave it dead)",
        )
        return
    kinds = RESTARTABLE.get(params.process)
    target = params.target
    name = target if isinstance(target, str) else target.service
    owner = next(
        (
            n
            for n, s in topo.services.items()
            if name in (n, f"vip_holder:{n}") or name in instance_names(n, s.replicas)
        ),
        None,
    )
    if kinds is None or owner is None:
        return
    svc = topo.services[owner]
    if svc.image is not None or svc.command is not None:
        return  # the user's image or command: only the run can tell what runs there
    runs = svc.kind in kinds and (
        params.process != "keepalived" or getattr(svc, "keepalived", None)
    )
    if not runs:
        yield (
            loc + ("process",),
            f"no {params.process} runs in the {svc.kind} containers of '{owner}', so there is "
            f"nothing to kill (target a service that runs it: {', '.join(kinds)})",
        )


def _spans(topo: Topology) -> list[tuple[Any, float, float, list[str], str | None]]:
    """(injection, start, end, containers hit, link) of every injection the schedule fires."""
    out = []
    for planned in plan(topo):
        inj = planned.injection
        step = inj.step
        # A window holds its target until its rollback; a step without one is an instant here
        # (issue 9: pause, restart, process_kill and kill of one node in a row are valid).
        end = inj.offset + step.for_ if step.for_ is not None else inj.offset
        link = getattr(step.fault.params, "link", None)
        out.append((inj, inj.offset, end, list(planned.hits or []), link))
    return out


def _check_overlaps(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """Two faults on one container (or two toxics of a kind, or a cut and a toxic, on one link)
    at overlapping times: the first one's rollback would undo or break the second."""
    spans = _spans(topo)
    for j, (b, b_start, b_end, b_hits, b_link) in enumerate(spans):
        for a, a_start, a_end, a_hits, a_link in spans[:j]:
            if a.index == b.index or b_start > a_end or a_start > b_end:
                continue
            common = sorted(set(a_hits) & set(b_hits))
            kinds = (a.step.fault.kind, b.step.fault.kind)
            same_link = (
                a_link is not None
                and a_link == b_link
                and (kinds[0] == kinds[1] or "down" in kinds)
            )
            if not common and not same_link:
                continue
            what = f"container {common[0]}" if common else f"link {a_link}"
            window = f"from {a_start:g}s to {a_end:g}s" if a_end > a_start else f"at {a_start:g}s"
            yield (
                ("chaos", b.index, "at"),
                f"'{b.name}' hits {what} while step '{a.name}' holds it ({kinds[0]} {window}): "
                "the first rollback would undo or break the other fault (move one outside the "
                "other's window, or target another instance)",
            )
            break


def check_plan(topo: Topology, base_dir: Path = Path(".")) -> Iterator[tuple[Loc, str]]:
    """Build the run's plan from a topology that passed every other check: user templates are
    rendered (syntax errors and names that do not exist are found here, at their line), and
    whatever else the plan would trip over is reported rather than left for the run."""
    from harness.kinds.base import UserFileError
    from harness.plan.build import make_plan

    subnet = topo.network.subnet or EXAMPLE_SUBNET
    secrets = {"db_password": "x" * 24, "redis_password": "x" * 24}
    try:
        make_plan(topo, "validate", subnet, [], secrets=secrets, base_dir=base_dir)
    except UserFileError as exc:
        loc: Loc = ("services", exc.service, "config")
        if exc.dest is not None and isinstance(topo.services[exc.service].config, dict):
            loc += (exc.dest,)
        yield loc, exc.message
    except AddressError as exc:
        yield ("network",), str(exc)
    except RecursionError:
        yield ("services",), "the topology is too deeply interlinked to plan (simplify depends_on)"
    except Exception as exc:  # noqa: BLE001 - a bug in the harness: say so, at the top
        text = f"{type(exc).__name__}: {exc}"
        yield (
            ("services",),
            f"the run's plan cannot be built from this topology: {text[:300]} "
            "(this is a harness bug: please report it with this file)",
        )


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
