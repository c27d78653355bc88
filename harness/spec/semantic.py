"""Cross-reference checks pydantic cannot do alone: dangling names, cycles, kinds that need peers."""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from harness.spec.compare import is_duration
from harness.spec.liveness import instance_names, plan
from harness.spec.models import ASSERTION_KINDS, ChaosStep, Topology, injection_name

Loc = tuple[Any, ...]

LB_KINDS = ("haproxy", "nginx-lb")
APP_KINDS = ("web", "php-fpm")
DB_KINDS = ("mariadb", "mysql")
NO_DEFAULT_CONFIG = ("redis", "custom")  # `config:` must name its container path: {path: file}
SUBNET_POOL = (
    "10.213.0.0/16"  # where the run's /24 comes from without network.subnet (runtime/stack.py)
)


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
        if fastcgi and backend_kind != "php-fpm":
            yield (
                ("services", name, "backends"),
                f"protocol: fastcgi needs a php-fpm service, '{svc.backends}' is {backend_kind}",
            )
        elif not fastcgi and backend_kind not in ("web", "custom"):
            hint = " (use an nginx-lb with protocol: fastcgi)" if backend_kind == "php-fpm" else ""
            yield (
                ("services", name, "backends"),
                f"HTTP backends must be web or custom, '{svc.backends}' is {backend_kind}{hint}",
            )
        for inst in getattr(svc, "weights", {}):
            if inst not in instance_names(svc.backends, services[svc.backends].replicas):
                yield (
                    ("services", name, "weights", inst),
                    f"'{inst}' is not an instance of {svc.backends}",
                )
    if svc.keepalived and svc.replicas < 2:
        yield ("services", name, "keepalived"), "a VIP needs at least 2 replicas (set replicas: 2)"


def _check_config(name: str, svc: Any, base_dir: Path) -> Iterator[tuple[Loc, str]]:
    if isinstance(svc.config, str):
        if svc.kind in NO_DEFAULT_CONFIG:
            yield (
                ("services", name, "config"),
                (
                    f"kind {svc.kind} has no default config file (write config: {{/path/in/container: {svc.config}}})"
                ),
            )
        elif not (base_dir / svc.config).is_file():
            yield (
                ("services", name, "config"),
                f"no file {base_dir / svc.config} (paths are relative to the topology file)",
            )
    elif isinstance(svc.config, dict):
        for dest, src in svc.config.items():
            if not dest.startswith("/"):
                yield (
                    ("services", name, "config", dest),
                    "the container path must be absolute (start it with /)",
                )
            if not (base_dir / src).is_file():
                yield (
                    ("services", name, "config", dest),
                    f"no file {base_dir / src} (paths are relative to the topology file)",
                )


def check_topology(topo: Topology, base_dir: Path = Path(".")) -> Iterator[tuple[Loc, str]]:
    services = topo.services
    names = sorted(services)
    instances = sorted(i for n, s in services.items() for i in instance_names(n, s.replicas))

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
        if svc.kind in LB_KINDS:
            yield from _check_lb(topo, name, svc, names)
        keepalived = getattr(svc, "keepalived", None)  # any load-balancer kind may carry a VIP
        if keepalived is not None and keepalived.vip != "auto":
            yield from _check_vip(topo, name, keepalived.vip)
        if svc.kind in APP_KINDS:
            app_svc: Any = svc
            if app_svc.sessions == "redis" and not any(
                s.kind == "redis" for s in services.values()
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
            if app_svc.app != "builtin" and not (base_dir / app_svc.app).is_dir():
                yield (
                    ("services", name, "app"),
                    (
                        f"no directory {base_dir / app_svc.app} (give the path of your PHP app, relative to the topology file)"
                    ),
                )
        if svc.kind == "mysql" and svc.image is None:
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
        if link.to in services and services[link.to].kind not in ("mariadb", "redis"):
            yield (
                ("links", i, "to"),
                "links can go to a mariadb or redis service (point it at the app's database or redis)",
            )

    cycle = _find_cycle(topo)
    if cycle:
        yield (
            ("services", cycle[0], "depends_on"),
            f"dependency cycle {' -> '.join(cycle)} (break it)",
        )

    if topo.load.target is not None and topo.load.target not in services:
        yield (
            ("load", "target"),
            f"unknown service '{topo.load.target}' ({_hint(topo.load.target, names)})",
        )
    if topo.load.target is None and not any(s.kind in LB_KINDS for s in services.values()):
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
        if not baseline.exists():
            yield (
                ("compare", "baseline"),
                f"no run directory or journal.json at {baseline} "
                "(paths are relative to the topology file; runs are under runs/<run-id>/)",
            )
        elif baseline.is_dir() and not (baseline / "journal.json").is_file():
            yield (
                ("compare", "baseline"),
                f"{baseline} has no journal.json (give a run directory, runs/<run-id>, "
                "or its journal.json)",
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
        if not (base_dir / p.module).is_file():
            yield (
                loc + ("module",),
                f"no file {base_dir / p.module} (paths are relative to the topology file)",
            )
    if a.kind == "no_lost_writes" and not any(s.kind in DB_KINDS for s in topo.services.values()):
        yield loc, "no_lost_writes needs a mariadb or mysql service"


def _check_vip(topo: Topology, name: str, vip: str) -> Iterator[tuple[Loc, str]]:
    loc: Loc = ("services", name, "keepalived", "vip")
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
    if kind == "partition" and isinstance(params.peers, list):
        for j, peer in enumerate(params.peers):
            if peer not in instances and peer not in names:
                yield (
                    loc + ("peers", j),
                    f"unknown container or service '{peer}' ({_hint(peer, instances + names)})",
                )


def _find_cycle(topo: Topology) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for dep in topo.services[n].depends_on:
            if dep not in topo.services or dep == n:
                continue
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in topo.services:
        if n not in state and (found := visit(n)):
            return found
    return None
