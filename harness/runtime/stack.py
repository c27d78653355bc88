"""Bring a RunPlan up on Docker and take it down again, finding everything by its run label.

`teardown(run_id)` removes whatever carries the run's label, whether bring-up finished, failed
half-way or was interrupted: the runner calls it from its `finally` (testcontainers' rule: a
failed start cleans up).
"""

from __future__ import annotations

import io
import ipaddress
import tarfile
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor

from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from harness.errors import InfrastructureError
from harness.plan.model import ContainerPlan, RunPlan
from harness.runtime import labels
from harness.runtime.docker import client
from harness.runtime.waits import wait_ready

Progress = Callable[[str], None]
SUBNET_POOL = ipaddress.IPv4Network("10.213.0.0/16")


def _used_networks() -> list[ipaddress.IPv4Network]:
    used = []
    for net in client().api.networks():
        for cfg in (net.get("IPAM") or {}).get("Config") or []:
            try:
                used.append(ipaddress.IPv4Network(cfg["Subnet"], strict=False))
            except (KeyError, ValueError):
                pass
    try:
        with open("/proc/net/route") as fh:
            for line in fh.readlines()[1:]:
                f = line.split()
                dest, mask = (int(f[1], 16), int(f[7], 16))
                if dest:
                    used.append(
                        ipaddress.IPv4Network(
                            (
                                ipaddress.IPv4Address(dest.to_bytes(4, "little")),
                                bin(mask).count("1"),
                            ),
                            strict=False,
                        )
                    )
    except OSError:
        pass
    return used


def free_subnets() -> list[str]:
    used = _used_networks()
    return [
        str(s) for s in SUBNET_POOL.subnets(new_prefix=24) if not any(s.overlaps(u) for u in used)
    ]


def create_network(run_id: str, topology: str, subnet: str | None = None) -> tuple[Network, str]:
    """A bridge on a free private /24 (or the topology's `network.subnet`). Two runs racing for
    one subnet: the loser tries the next."""
    if subnet is not None:
        used = [u for u in _used_networks() if u.overlaps(ipaddress.IPv4Network(subnet))]
        if used:
            raise InfrastructureError(
                f"network.subnet {subnet} overlaps {used[0]} already in use on this machine "
                "(pick another, or drop network.subnet to get a free one)"
            )
    for candidate in [subnet] if subnet else free_subnets()[:20]:
        gateway = str(next(ipaddress.IPv4Network(candidate).hosts()))
        try:
            net = client().networks.create(
                f"harness-{run_id}",
                driver="bridge",
                labels=labels.for_run(run_id, topology),
                ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=candidate, gateway=gateway)]),
                options={"com.docker.network.bridge.enable_icc": "true"},
            )
            return net, candidate
        except APIError as exc:
            if "overlap" in str(exc).lower() or "already" in str(exc).lower():
                continue
            raise InfrastructureError(f"cannot create the run network: {exc.explanation}") from None
    raise InfrastructureError(
        f"no free /24 left in {SUBNET_POOL} (run `harness gc` to remove old runs)"
    )


def _tar(files: dict[str, str], dirs: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for dest, src in (dirs or {}).items():
            tar.add(src, arcname=dest.lstrip("/"), filter=_world_readable)
        for path, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _world_readable(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mode |= 0o755 if info.isdir() else 0o644
    return info


def create(
    plan: RunPlan, c: ContainerPlan, image: str, network: str, dirs: bool = True
) -> Container:
    """`c` created from `image` as the plan says (name, hostname, command, environment, the
    run's labels, limits, address and aliases on `network`) with its files copied in, and its
    `dirs` unless told not to (a deploy's own image brings its app); not started."""
    api = client().api
    endpoint = api.create_endpoint_config(ipv4_address=c.ip, aliases=[c.instance, c.service])
    host_config = api.create_host_config(
        cap_add=c.cap_add or None,
        nano_cpus=int(c.cpus * 1e9) if c.cpus else None,
        mem_limit=c.memory,
        init=False,
    )
    run_labels = labels.for_run(plan.run_id, plan.topology, c.service, c.instance)
    if c.service in plan.vips:
        run_labels[labels.VIP] = plan.vips[c.service]
    try:
        created = api.create_container(
            image=image,
            name=labels.container_name(plan.run_id, c.instance),
            hostname=c.instance,
            command=c.command,
            environment=c.env,
            labels=run_labels,
            host_config=host_config,
            networking_config=api.create_networking_config({network: endpoint}),
        )
    except APIError as exc:
        raise InfrastructureError(f"cannot create {c.instance}: {exc.explanation}") from None
    container = client().containers.get(created["Id"])
    if c.files or (dirs and c.dirs):
        container.put_archive("/", _tar(c.files, c.dirs if dirs else None))
    return container


class Stack:
    def __init__(self, plan: RunPlan, network: Network, progress: Progress = print) -> None:
        self.plan, self.network, self.progress = plan, network, progress
        self.containers: dict[str, Container] = {}
        self.image_tags: dict[str, str] = {}
        # Where bring-up's time went, in seconds: "create (all)" (until the last container was
        # created and its files copied in, 4 at a time), per level its wall time ("level 1: a, b") and per
        # container "start <instance>" (the start call) and "ready <instance>" (its wait and
        # setup). The run journals it in its `up` phase; bench/bringup.py reads it there.
        self.timings: dict[str, float] = {}

    def _create(self, c: ContainerPlan) -> Container:
        image = self.image_tags.get(c.image, c.image) if c.builtin_image else c.image
        return create(self.plan, c, image, self.network.name)

    def _start(self, c: ContainerPlan, container: Container) -> Container:
        t0 = time.monotonic()
        container.start()
        self.timings[f"start {c.instance}"] = round(time.monotonic() - t0, 3)
        self.containers[c.instance] = container
        return container

    def _start_one(
        self, c: ContainerPlan, created: Container | None = None, started: bool = False
    ) -> None:
        container = created if created is not None else self._create(c)
        if not started:
            self._start(c, container)
        t1 = time.monotonic()
        wait_ready(container, c.instance, c.wait)
        for cmd in c.setup:
            code, output = container.exec_run(["/bin/sh", "-c", cmd])
            if code != 0:
                raise InfrastructureError(
                    f"setup of {c.instance} failed ({cmd[:60]}...): {output.decode(errors='replace')[-300:]}"
                )
        self.timings[f"ready {c.instance}"] = round(time.monotonic() - t1, 3)
        self.progress(f"{c.instance} ready ({c.ip})")

    def up(self, first: Collection[str] = ()) -> None:
        """Create every container (and copy its files in) at once, then start level by level:
        only starting waits for the level before (bench/bringup.py: creating inside the level
        loop put ~0.5 s per container on the critical path of every level). Creation follows
        the plan's order, so each container of the first level starts as soon as it exists.

        `first` names first-level containers created and started before anything else is
        created (their readiness is still awaited with their level): the caller's slowest
        starters, e.g. a Prometheus that scrapes nothing for its first ~5 s."""
        t0 = time.monotonic()
        head = [c for c in self.plan.levels[0] if c.instance in first] if self.plan.levels else []
        early = {c.instance: self._start(c, self._create(c)) for c in head}
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures: dict[str, Future[Container]] = {}
            for c in self.plan.containers:
                if c.instance in early:
                    futures[c.instance] = Future()
                    futures[c.instance].set_result(early[c.instance])
                else:
                    futures[c.instance] = pool.submit(self._create, c)
            done: list[float] = []
            for fut in futures.values():
                fut.add_done_callback(lambda _: done.append(time.monotonic()))
            for n, level in enumerate(self.plan.levels, 1):
                t1 = time.monotonic()
                with ThreadPoolExecutor(max_workers=max(1, len(level))) as starts:
                    for fut in [
                        starts.submit(
                            self._start_created, c, futures[c.instance], c.instance in early
                        )
                        for c in level
                    ]:
                        fut.result()
                names = ", ".join(c.instance for c in level)
                self.timings[f"level {n}: {names}"] = round(time.monotonic() - t1, 3)
        self.timings["create (all)"] = round(max(done, default=t0) - t0, 3)

    def _start_created(self, c: ContainerPlan, created: Future[Container], started: bool) -> None:
        self._start_one(c, created.result(), started)

    def container(self, instance: str) -> Container:
        return self.containers[instance]


def teardown(run_id: str | None = None) -> tuple[int, int]:
    """Remove every container and network carrying the run's label (all runs when None)."""
    c = client()
    removed = [0, 0]
    conts = c.containers.list(all=True, filters=labels.run_filter(run_id))
    # One thread a container: a ninth waiting for a slot (Prometheus, started first and listed
    # last) added its whole removal to the run's end.
    with ThreadPoolExecutor(max_workers=max(1, min(32, len(conts)))) as pool:
        for ok in pool.map(_remove_container, conts):
            removed[0] += ok
    for net in c.networks.list(filters=labels.run_filter(run_id)):
        try:
            net.remove()
            removed[1] += 1
        except NotFound:
            pass
        except APIError as exc:
            raise InfrastructureError(
                f"cannot remove network {net.name}: {exc.explanation}"
            ) from None
    return removed[0], removed[1]


def _remove_container(container: Container) -> int:
    try:
        if container.status == "paused":
            container.unpause()
        container.remove(force=True, v=True)
        return 1
    except NotFound:
        return 0
