"""`harness export compose`: the run's plan as a Compose project and a Swarm stack.

`docker-compose.yml` (Compose file format 3.8, which Debian's docker-compose 1.29 reads) starts
what `harness up` starts: one Compose service per container, the same images, commands,
environment and capabilities, the rendered configs bind-mounted read-only from `files/`, static
addresses on a bridge with the run's subnet (so Keepalived floats the same VIP), and each
container's readiness wait as its healthcheck. Every container and the network carry the run's
labels, so `harness down RUN_ID` and `harness gc` remove them like any run.

`docker-stack.yml` is the same stack for `docker stack deploy`: Swarm assigns addresses itself,
so its configs come from the name plan (peers reached by DNS name), they ship as Swarm configs
(no host paths), a load-balancer pair becomes one service with `replicas: 2` whose Swarm service
VIP replaces the Keepalived VIP, and each service gets `deploy:` keys (replicas, placement,
restart policy, resources)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from harness.export.plan import Exported, address_plan, lb_services, name_plan
from harness.plan.model import ContainerPlan, Wait
from harness.runtime import labels

COMPOSE_VERSION = "3.8"
NETWORK = "stack"
HEALTH_INTERVAL = "1s"


def _esc(value: str) -> str:
    """Compose interpolates `$`: a literal one is written `$$`."""
    return value.replace("$", "$$")


def health_command(wait: Wait) -> str | None:
    """The readiness wait as a command run inside the container (bash's /dev/tcp: no curl
    needed in every image). http/tcp targets are checked on 127.0.0.1, which every built-in
    service listens on too."""
    if wait.kind == "http":
        url = urlsplit(wait.target)
        port = url.port or 80
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        script = (
            f"exec 3<>/dev/tcp/127.0.0.1/{port} && "
            f'printf "GET {path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n" >&3 && '
            'head -n1 <&3 | grep -q " 200 "'
        )
        return f"bash -c {shlex.quote(script)}"
    if wait.kind == "tcp":
        tcp_port = wait.target.rpartition(":")[2]
        return f"bash -c {shlex.quote(f'exec 3<>/dev/tcp/127.0.0.1/{tcp_port}')}"
    if wait.kind == "file":
        return f"test -f {shlex.quote(wait.target)}"
    if wait.kind == "exec":
        return wait.target
    return None


def healthcheck(wait: Wait) -> dict[str, Any] | None:
    cmd = health_command(wait)
    if cmd is None:
        return None
    # The harness polls every 0.25 s until the wait's timeout; a healthcheck polls every second
    # and the wait's timeout is its start period.
    return {
        "test": ["CMD-SHELL", _esc(cmd)],
        "interval": HEALTH_INTERVAL,
        "timeout": "2s",
        "retries": 3,
        "start_period": f"{int(wait.timeout)}s",
    }


def file_key(instance: str, dest: str) -> str:
    """A config's name: the instance and its path, in the characters Swarm allows."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{instance}{dest}")


def _write_files(out: Path, folder: str, c: ContainerPlan) -> list[tuple[str, str]]:
    """The container's rendered files under out/folder/<instance>/<path>; (relative, dest)."""
    written = []
    for dest, content in sorted(c.files.items()):
        rel = Path(folder) / c.instance / dest.lstrip("/")
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(content)
        written.append((f"./{rel.as_posix()}", dest))
    return written


def _common(exp: Exported, c: ContainerPlan) -> dict[str, Any]:
    svc: dict[str, Any] = {"image": exp.image(c)}
    if c.command is not None:
        svc["command"] = [_esc(a) for a in c.command]
    if c.env:
        svc["environment"] = {k: _esc(v) for k, v in sorted(c.env.items())}
    if c.cap_add:
        svc["cap_add"] = list(c.cap_add)
    check = healthcheck(c.wait)
    if check is not None:
        svc["healthcheck"] = check
    return svc


def _resources(c: ContainerPlan) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if c.cpus:
        limits["cpus"] = str(c.cpus)
    if c.memory:
        limits["memory"] = c.memory
    return {"limits": limits} if limits else {}


def compose_document(exp: Exported, out: Path) -> dict[str, Any]:
    plan = exp.plan
    run_labels = labels.for_run(plan.run_id, plan.topology)
    services: dict[str, Any] = {}
    for c in plan.containers:
        svc = _common(exp, c)
        svc["hostname"] = c.instance
        svc["container_name"] = labels.container_name(plan.run_id, c.instance)
        svc["labels"] = labels.for_run(plan.run_id, plan.topology, c.service, c.instance)
        if c.service in plan.vips:
            svc["labels"][labels.VIP] = plan.vips[c.service]
        mounts = _write_files(out, "files", c)
        mounts += [(src, dest) for dest, src in sorted(c.dirs.items())]
        if mounts:
            svc["volumes"] = [f"{src}:{dest}:ro" for src, dest in mounts]
        deps = [i.instance for d in c.depends_on for i in plan.instances(d)]
        if deps:
            svc["depends_on"] = deps
        svc["networks"] = {NETWORK: {"ipv4_address": c.ip, "aliases": [c.service]}}
        resources = _resources(c)
        if resources:
            svc["deploy"] = {"resources": resources}
        services[c.instance] = svc
    return {
        "version": COMPOSE_VERSION,
        "services": services,
        "networks": {
            NETWORK: {
                "name": f"harness-{plan.run_id}",
                "driver": "bridge",
                "labels": run_labels,
                "ipam": {"config": [{"subnet": plan.subnet}]},
            }
        },
    }


def stack_document(exp: Exported) -> dict[str, Any]:
    """The Swarm stack: one service per container, except that a load balancer's instances
    (identical once Keepalived is gone) become one service with that many replicas."""
    plan = exp.plan
    lbs = set(lb_services(exp.topology))
    services: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    for c in plan.containers:
        name = c.service if c.service in lbs else c.instance
        if name in services:
            services[name]["deploy"]["replicas"] += 1
            continue
        svc = _common(exp, c)
        svc.pop("cap_add", None)  # only Keepalived needed them
        svc["hostname"] = c.instance if name == c.instance else "{{.Service.Name}}-{{.Task.Slot}}"
        svc["labels"] = labels.for_run(plan.run_id, plan.topology, c.service, name)
        if c.files:
            svc["configs"] = []
            for dest in sorted(c.files):
                key = file_key(name, dest)
                configs[key] = {"file": f"./configs/{name}/{dest.lstrip('/')}"}
                svc["configs"].append({"source": key, "target": dest, "mode": 0o444})
        deps = [i.instance for d in c.depends_on for i in plan.instances(d)]
        if deps:
            svc["depends_on"] = deps  # ignored by Swarm: services start together and retry
        svc["networks"] = {NETWORK: {"aliases": [c.service]}}
        deploy: dict[str, Any] = {
            "replicas": 1,
            "labels": labels.for_run(plan.run_id, plan.topology, c.service),
            # Names resolve to the tasks' own addresses: a service VIP and the routing mesh need
            # IPVS, which this kernel lacks (the VIP mode converges but answers nothing).
            "endpoint_mode": "dnsrr",
            "restart_policy": {"condition": "any", "delay": "2s"},
            "placement": (
                {"preferences": [{"spread": "node.id"}]}  # the pair on different nodes if it can
                if name in lbs
                else {"constraints": ["node.platform.os == linux"]}
            ),
        }
        resources = _resources(c)
        if resources:
            deploy["resources"] = resources
        svc["deploy"] = deploy
        services[name] = svc
    return {
        "version": COMPOSE_VERSION,
        "services": services,
        "networks": {
            NETWORK: {
                "driver": "overlay",
                "labels": labels.for_run(plan.run_id, plan.topology),
            }
        },
        "configs": configs,
    }


def _write_configs(out: Path, exp: Exported) -> None:
    lbs = set(lb_services(exp.topology))
    for c in exp.plan.containers:
        name = c.service if c.service in lbs else c.instance
        for dest, content in c.files.items():
            path = out / "configs" / name / dest.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)


def _setup_script(exp: Exported) -> str | None:
    """Commands the harness runs inside a container once it is ready (`setup`): Compose has no
    hook for them, so they become a script to run after `docker-compose up`."""
    lines = [
        f"docker-compose exec -T {c.instance} /bin/sh -c {shlex.quote(cmd)}"
        for c in exp.plan.containers
        for cmd in c.setup
    ]
    if not lines:
        return None
    return (
        "#!/bin/sh\n# Run after `docker-compose up -d` once every service is healthy.\nset -e\n"
        + ("\n".join(lines) + "\n")
    )


def dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=120)


def export_compose(
    topology_file: str | Path,
    out: str | Path,
    run_id: str | None = None,
    subnet: str | None = None,
) -> dict[str, Any]:
    """Write docker-compose.yml, docker-stack.yml and their files under `out`; return a
    summary (run id, subnet, VIPs, load URL, files written)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exp = address_plan(topology_file, run_id, subnet)
    (out / "docker-compose.yml").write_text(dump(compose_document(exp, out)))
    swarm = name_plan(topology_file, exp.plan.run_id, exp.plan.subnet, secrets=exp.plan.secrets)
    _write_configs(out, swarm)
    (out / "docker-stack.yml").write_text(dump(stack_document(swarm)))
    written = ["docker-compose.yml", "docker-stack.yml"]
    setup = _setup_script(exp)
    if setup is not None:
        (out / "post-up.sh").write_text(setup)
        (out / "post-up.sh").chmod(0o755)
        written.append("post-up.sh")
    return {
        "run_id": exp.plan.run_id,
        "subnet": exp.plan.subnet,
        "vips": dict(exp.plan.vips),
        "load_url": exp.plan.load_url,
        "images": sorted(set(exp.image_tags.values())),
        "files": written,
    }
