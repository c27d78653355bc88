"""`harness run` on a `runtime: hosts` topology: the same phases and verdict as a docker run,
against machines the harness neither builds nor starts.

- build: only the harness's own Prometheus image;
- up: every host answers over SSH (after the `allow:` and `lab:`/--i-know checks); the run's
  Prometheus (harness/remote/observer.py) scrapes the harness's exporters on loopback and the
  hosts' exporters; Locust will load the LB's VIP (or its first host, or `load.url`);
- baseline: the load URL answers, every host exporter is up, every host said whether its
  service runs (journaled), every LB log is being read (one that cannot be read is refused)
  and every LB host said whether it holds its VIP;
- load: Locust runs while the chaos steps are applied over SSH on schedule (journaled before
  they run, rolled back at their window's end, and all of them when the load ends), with the
  VIP holders, the LB/Keepalived logs and each host's service watched over SSH
  (harness/remote/watch.py), from which the docker runtime's recovery watcher decides when the
  stack is steady again (harness/remote/steady.py: recovery_time, each fault's effect);
- post-run: the stored order ids read on the database host and the testinfra modules run
  over ssh:// (harness/run/hosts_post.py), published and awaited as on docker (judge.post_run);
- down: faults undone, Locust and the watchers stopped, the run's Prometheus removed. The hosts
  are left as they were found.
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httpx
import yaml

from harness.errors import InfrastructureError, SpecError
from harness.load.process import LocustProcess
from harness.observe.exporter import HarnessExporter
from harness.observe.prom import Prometheus
from harness.plan.model import ScrapeTarget
from harness.remote import observer
from harness.remote.chaos import HostChaos
from harness.remote.cli import targets_by_step
from harness.remote.faults import vip_of
from harness.remote.shell import SshShell
from harness.remote.steady import recovery_watcher
from harness.remote.targets import Host, hosts_of, refuse_outside, refuse_unconfirmed
from harness.remote.watch import HostWatchers
from harness.roles import Role, kinds_of
from harness.run import hosts_post, judge, subscribers
from harness.run import load as load_steps
from harness.run.core import Run
from harness.run.result import RunResult
from harness.runtime import images
from harness.runtime.stack import teardown
from harness.spec.hostsrt import refuse_up
from harness.spec.models import Topology


def runtime_of(path: str | Path) -> str:
    """The `runtime:` a topology file asks for (docker when absent or unreadable: the normal
    validation then says what is wrong)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return "docker"
    return str(data.get("runtime", "docker")) if isinstance(data, dict) else "docker"


def load_url(topo: Topology, hosts: dict[str, Host]) -> str:
    if topo.load.url:
        return topo.load.url
    lbs = kinds_of(Role.LOAD_BALANCER)
    name = topo.load.target or next(n for n, s in topo.services.items() if s.kind in lbs)
    if getattr(topo.services[name], "keepalived", None) is not None:
        return f"http://{vip_of(topo, name)}"
    return f"http://{next(h.address for h in hosts.values() if h.service == name)}"


class HostsRun(Run):
    """A Run whose stack already exists: each phase that would build, start or watch
    containers does it over SSH instead (see the module's docstring)."""

    def __init__(
        self,
        topology_file: str | Path,
        *args: Any,
        i_know: bool = False,
        ssh_config: str | None = None,
        **kw: Any,
    ) -> None:
        """Run's arguments, plus --i-know (destructive faults on hosts not marked lab: true)
        and another ssh config file."""
        self.i_know, self.ssh_config = i_know, ssh_config
        super().__init__(topology_file, *args, **kw)

    def bring_up(self) -> RunResult:
        """Refused as `harness up` refuses it: the machines are up already."""
        raise SpecError([refuse_up(self.topology_file) or f"{self.topology_file}: runtime: hosts"])

    def validate(self) -> None:
        super().validate()
        src = self.topology_file
        bad = hosts_post.refusals(self.topo, src)
        if bad:
            raise SpecError(bad)
        self.hosts = hosts_of(self.topo)
        refuse_outside(self.topo, self.hosts, src)
        observer.refuse_outside(self.topo, src)  # the user's Prometheus, if any
        steps = targets_by_step(self.topo, self.hosts)
        refuse_unconfirmed(self.topo, self.hosts, steps, self.i_know, src)
        url = load_url(self.topo, self.hosts)
        host = urlsplit(url).hostname or ""
        try:
            inside = any(
                ipaddress.IPv4Address(host) in ipaddress.IPv4Network(r) for r in self.topo.allow
            )
        except ValueError:
            inside = False
        if not inside and self.allow_external_target is None:
            raise SpecError(
                [
                    f"{src}: load: {url} is outside allow: [{', '.join(self.topo.allow)}] (add "
                    "its range to allow:, or pass --allow-external-target WHY)"
                ]
            )
        self.load_url = url

    def build(self) -> None:
        with self.journal.phase("build"):
            if observer.local_binary() is None:  # else nothing to build: Prometheus is local
                self.image_tags = {observer.INSTANCE: images.build(observer.INSTANCE, self.say)}

    def up(self) -> None:
        with self.journal.phase("up") as ph:
            self.journal.data["runtime"] = "hosts"
            self.shell = SshShell(self.ssh_config)
            for h in self.hosts.values():  # nothing is started there: only asked to answer
                res = self.shell.run(h, "true")
                if res.rc != 0:
                    raise InfrastructureError(f"{h.instance} ({h.url}): `true` exited {res.rc}")
            bind = "127.0.0.1"
            locust_addrs = [
                f"{bind}:{observer.loopback_port()}" for _ in range(1 + self.topo.load.workers)
            ]
            self.exporter = HarnessExporter(bind, observer.loopback_port())
            exporters = [
                ScrapeTarget("harness", f"{bind}:{self.exporter.server.server_port}", "harness")
            ] + [
                ScrapeTarget("locust", a, "locust" if i == 0 else f"locust-worker-{i}")
                for i, a in enumerate(locust_addrs)
            ]
            exporters += [
                ScrapeTarget("locust", a, load_steps.remote_instance(i))
                for i, a in enumerate(self.topo.load.master.remote_workers, 1)
            ]
            self.host_targets = observer.scraped(self.topo, self.hosts)  # none: user's Prometheus
            targets = exporters + self.host_targets
            if observer.INSTANCE in self.image_tags:
                url = observer.start(
                    self.run_id, self.topo, self.image_tags[observer.INSTANCE], targets
                )
            else:
                url, self.prom_proc = observer.start_local(
                    self.run_dir, self.run_id, self.topo, targets
                )
            self.prom = Prometheus(url)
            self.locust = LocustProcess(
                self.topo.load,
                self.load_url,
                self.run_id,
                self.run_dir,
                locust_addrs,
                master_port=observer.loopback_port(),
                ui=self.ui,
            )
            ph.update(
                load_url=self.load_url,
                prometheus=url,
                prometheus_reads=observer.user_url(self.topo),  # its remote_read, or None
                hosts={i: h.url for i, h in self.hosts.items()},
                scraped=[f"{t.instance}={t.address}" for t in self.host_targets],
            )

    def baseline_check(self) -> None:
        assert self.prom and self.exporter
        with self.journal.phase("baseline") as ph:
            load = self.topo.load
            self.host_watchers = HostWatchers(
                self.topo,
                self.hosts,
                self.exporter,
                time.time() - 1,
                time.time() + 120 + load.duration,
                self.ssh_config,
            )
            self.host_watchers.start()
            self.watchers = cast(Any, self.host_watchers)  # the verdict's VIP lane reads it
            deadline, why = time.monotonic() + 60, "?"
            while True:
                unreadable = self.host_watchers.unreadable()
                if unreadable:  # a wrong log path or unit: silence would pass for health
                    raise InfrastructureError("; ".join(unreadable))
                try:
                    answered = httpx.get(self.load_url, timeout=2).status_code
                    why = (
                        (f"{self.load_url} answered {answered}" if answered >= 500 else "")
                        or observer.not_ready(self.prom, self.topo, self.hosts)
                        or self.host_watchers.not_ready()  # every status, log and VIP loop
                    )
                except (httpx.HTTPError, InfrastructureError) as exc:
                    why = str(exc)
                if not why:
                    break
                if time.monotonic() > deadline:
                    raise InfrastructureError(f"the hosts' stack is not steady after 60 s: {why}")
                time.sleep(0.5)
            # a service down from the start stays a steady problem (recovery_time says so)
            down = self.host_watchers.not_running()
            if down:
                self.say(f"baseline: not running on {', '.join(down)} (their control.status)")
            ph.update(vip_holders=self.host_watchers.vip_holders(), not_running=down)

    def load_and_chaos(self) -> None:
        assert self.locust and self.prom and self.exporter
        load = self.topo.load
        with self.journal.phase("load"):
            self.locust.start()
            self._t0 = t0 = self.locust.wait_started()
            self.journal["load_started_at"] = t0
            self.say(f"load: {load.users} users for {load.duration:g}s through {self.load_url}")
            self.events.subscribe(subscribers.exporter_gauges(self.exporter))
            self.events.subscribe(subscribers.console(self.say))
            self.recovery = recovery = recovery_watcher(
                self.topo,
                self.hosts,
                self.host_watchers,
                self.exporter,
                self.locust.metrics_addrs,
            )
            self.events.subscribe(subscribers.recovery_watch(recovery))
            self.host_chaos = HostChaos(
                self.topo,
                self.hosts,
                self.shell,
                self.journal,
                self.run_id,
                lambda m: None,
                notify=self.events.fault_notify,
                snapshot=lambda: {"vip_holders": self.host_watchers.vip_holders()},
            )
            try:  # the faults still on stay on until Locust has stopped sending
                left = max(0.0, t0 + load.duration - time.time())
                self.host_chaos.run(left, self._host_tick, undo=False)
            finally:
                recovery.stop()
            self.timeline = load_steps.reckon(
                self.journal,
                self.prom,
                self.locust,
                self.topo,
                t0,
                self.say,
                before_release=self.host_chaos.rollback_all,
                ended_by_load={e["name"] for _, e, _ in self.host_chaos.active},
                effects=recovery.spans,
                quiet=recovery.quiet,
            )
            self.journal.data["recovery"] = recovery.summary()

    def _host_tick(self) -> None:
        assert self.locust is not None
        if not self.locust.running():
            raise InfrastructureError(self.locust.why_not_running())
        self.recovery.tick()
        active = ", ".join(e["name"] for _, e, _ in self.host_chaos.active)
        self.on_tick(time.time() - self._t0, self.topo.load.duration, active)

    def post_run(self) -> None:
        judge.post_run(self)

    def check_writes(self) -> tuple[int, int, list[str]]:
        return hosts_post.check_writes(self.topo, self.hosts, self.shell, self.run_dir)

    def check_testinfra(self, spec: Any, index: int) -> tuple[int, int]:
        return hosts_post.check_testinfra(
            Path(self.topology_file).parent / spec.module,
            self.hosts,
            spec.hosts,
            self.run_dir,
            index=index,
            ssh_config=self.ssh_config,
        )

    def down(self) -> None:
        chaos: Any = getattr(self, "host_chaos", None)
        try:
            if chaos is not None:
                chaos.rollback_all()
                chaos.close()
        finally:
            if self.locust is not None:
                self.locust.stop()
            hw = getattr(self, "host_watchers", None)
            if hw is not None:
                hw.stop()
            if self.exporter is not None:
                self.exporter.close()
            with self.journal.phase("down") as ph:
                proc = getattr(self, "prom_proc", None)
                if proc is not None:
                    proc.terminate()
                    proc.wait(10)
                else:
                    removed = teardown(self.run_id)  # the run's Prometheus container
                    ph.update(containers_removed=removed[0])
