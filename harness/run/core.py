"""One run, as the explicit sequence of phases in PHASES (validate, build, up, baseline,
load + chaos, post-run, verdict, down, report), each journaled. Whatever happens (an assertion
fails, Docker errors, Ctrl-C, SIGTERM), faults are rolled back, Locust is stopped and the run's
resources are removed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.chaos.base import FaultContext
from harness.chaos.schedule import Schedule
from harness.errors import InfrastructureError
from harness.grafana import GrafanaAnnotator
from harness.journal import Journal
from harness.load.process import LocustProcess
from harness.observe import writes
from harness.observe.exporter import HarnessExporter, free_port
from harness.observe.prom import Prometheus
from harness.plan.build import make_plan, with_prometheus
from harness.plan.check import load_topology
from harness.plan.model import RunPlan
from harness.plan.targets import check_load_url
from harness.report.writers import write_reports
from harness.roles import Role, kinds_of
from harness.run import judge, sequence, stale, subscribers
from harness.run import load as load_steps
from harness.run.events import Events
from harness.run.phases import PHASES, Phase, Stage, of
from harness.run.result import RunResult, new_run_id
from harness.runtime import images
from harness.runtime.stack import Stack, create_network, teardown
from harness.spec.models import Topology
from harness.verdict.assertions import Result
from harness.verdict.compare import load_baseline
from harness.verdict.windows import Timeline
from harness.watch import Watchers, recovery_setup
from harness.watch.state import wait_steady

Say = Callable[[str], None]


def build_images(topo: Topology, say: Say, base_dir: Path = Path(".")) -> dict[str, str]:
    names = {
        c.image
        for c in make_plan(
            with_prometheus(topo), "x", topo.network.subnet or "10.0.0.0/24", [], base_dir=base_dir
        ).containers
        if c.builtin_image
    }
    return {name: images.build(name, say) for name in sorted(names)}


class Run:
    def __init__(
        self,
        topology_file: str | Path,
        runs_dir: Path = Path("runs"),
        keep: bool = False,
        say: Say = print,
        ui: bool = False,
        experiments: list[str] | None = None,
        allow_external_target: str | None = None,
        compare: str | Path | None = None,
        judged: bool = True,
    ) -> None:
        self.ui, self.allow_external_target = ui, allow_external_target
        # Called while the load runs (elapsed s, total s, active faults): the CLI's progress bar.
        self.on_tick: Callable[[float, float, str], None] = lambda elapsed, total, faults: None
        self.topology_file = str(topology_file)
        self.keep, self.say, self.runs_dir = keep, say, runs_dir
        self.experiments, self.judged, self.compare_with = experiments, judged, compare
        self.events = Events()
        for phase in of(PHASES, Stage.VALIDATE):
            phase.run(self)
        self.run_id = new_run_id()
        self.run_dir = runs_dir / self.run_id
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.run_dir, self.run_id, self.topo.name, self.topology_file)
        self.image_tags: dict[str, str] = {}
        self.plan: RunPlan | None = None
        self.stack: Stack | None = None
        self.locust: LocustProcess | None = None
        self.exporter: HarnessExporter | None = None
        self.schedule: Schedule | None = None
        self.prom: Prometheus | None = None
        self.timeline: Timeline | None = None  # once the reckoning of the load's end is over
        self.reckoning: load_steps.Reckoning | None = None
        self.watchers: Watchers | None = None
        self.results: list[Result] = []
        self.load_ahead = False  # Locust started during the baseline (a run, not `harness up`)
        self.grafana = GrafanaAnnotator.from_env(
            run_id=self.run_id
        )  # None unless GRAFANA_URL is set

    # ------------------------------------------------------------------ phases

    def validate(self) -> None:
        """Nothing is started before this passes. `harness up` judges nothing, so a topology
        without assertions is fine there. The regression baseline (`compare:` or --compare) is
        read now too: bad input starts nothing."""
        warnings: list[str] = []
        self.topo = load_topology(
            self.topology_file,
            self.experiments,
            require_assertions=self.judged,
            warnings=warnings,
            allow_external_target=self.allow_external_target is not None,
        )
        for warning in warnings:
            self.say(warning)
        self.baseline: dict[str, Any] | None = None
        spec_cmp = getattr(self.topo, "compare", None)
        if self.compare_with is not None:
            self.baseline = load_baseline(Path(self.compare_with))
        elif spec_cmp is not None and spec_cmp.baseline:
            self.baseline = load_baseline(Path(self.topology_file).parent / spec_cmp.baseline)

    def build(self) -> None:
        # Destroy's other half, as molecule does: what a dead harness left of this topology.
        for line in stale.collect(self.runs_dir, self.topo.name):
            self.say(line)
        with self.journal.phase("build"):
            self.image_tags = build_images(self.topo, self.say, Path(self.topology_file).parent)

    def up(self) -> None:
        with self.journal.phase("up") as ph:
            t0 = time.monotonic()
            network, subnet = create_network(self.run_id, self.topo.name, self.topo.network.subnet)
            ph["timings"] = {"network": round(time.monotonic() - t0, 3)}
            gateway = str(
                network.attrs["IPAM"]["Config"][0].get("Gateway") or subnet.rsplit(".", 1)[0] + ".1"
            )
            locust_addrs = [
                f"{gateway}:{free_port(gateway)}" for _ in range(1 + self.topo.load.workers)
            ]
            self.exporter = HarnessExporter(gateway, free_port(gateway))
            exporters = load_steps.scrape_targets(
                f"{gateway}:{self.exporter.server.server_port}",
                locust_addrs,
                self.topo.load.master.remote_workers,
            )
            self.plan = make_plan(
                self.topo, self.run_id, subnet, exporters, base_dir=Path(self.topology_file).parent
            )
            note = check_load_url(self.plan, self.allow_external_target, self.topology_file)
            if note:
                self.say(note)
                ph["external_target"] = note
            self.stack = Stack(self.plan, network, self.say)
            self.stack.image_tags = self.image_tags
            # Prometheus hands its targets to its scrape loops only after ~5 s: started first,
            # it scrapes by the time the rest is ready (the baseline waits for its figures).
            observers = kinds_of(Role.OBSERVER)
            self.stack.up(first=[c.instance for c in self.plan.containers if c.kind in observers])
            ph["timings"].update(self.stack.timings)
            self.locust = LocustProcess(
                self.topo.load,
                self.plan.load_url,
                self.run_id,
                self.run_dir,
                locust_addrs,
                master_port=free_port("127.0.0.1"),
                ui=self.ui,
            )
            self.prom = Prometheus(self.plan.prometheus_url)
            ph.update(
                subnet=subnet,
                load_url=self.plan.load_url,
                vips=self.plan.vips,
                containers={c.instance: c.ip for c in self.plan.containers},
            )

    def baseline_check(self) -> None:
        assert self.plan and self.prom and self.stack and self.locust
        with self.journal.phase("baseline") as ph:
            if self.load_ahead:  # Locust's start-up (imports) while the stack settles
                self.locust.prestart()
            ph.update(wait_steady(self.plan, self.prom, self.stack.containers))

    def load_and_chaos(self) -> None:
        assert self.plan and self.locust and self.stack and self.prom and self.exporter
        load = self.topo.load
        with self.journal.phase("load"):
            self.watchers = Watchers(
                self.plan,
                self.stack.containers,
                self.exporter,
                time.time() - 1,
                max_seconds=load.duration + 120,
            )
            self.watchers.start()
            self.locust.start()
            self._t0 = t0 = self.locust.wait_started()
            self.journal["load_started_at"] = t0
            self.say(
                f"load: {load.users} users for {load.duration:g}s through {self.plan.load_url}"
            )
            ctx = FaultContext(
                self.stack.containers,
                self.run_id,
                self.plan,
                random.Random(self.topo.seed),
                base_dir=Path(self.topology_file).parent,
                checkpoint=self.journal.save,
            )
            # every Locust process read, load.master.remote_workers included
            self.recovery = recovery = recovery_setup.for_run(
                self.topo, self.plan, self.watchers, self.exporter, self.locust.metrics_addrs
            )
            self.events.subscribe(subscribers.exporter_gauges(self.exporter))
            if self.grafana is not None:
                self.events.subscribe(subscribers.grafana_annotations(self.grafana))
            self.events.subscribe(subscribers.console(self.say))
            self.events.subscribe(subscribers.recovery_watch(recovery))
            self.schedule = Schedule(
                self.topo.chaos, ctx, self.journal, self.events.fault_notify, self._snapshot
            )
            self.schedule.run(t0, t0 + load.duration, self._tick)
            recovery.stop()
            # Once Locust has stopped, the faults are rolled back while Prometheus's final
            # scrape is awaited (post-run measures meanwhile; it awaits the reckoning's end);
            # if a process did not report its stop, only after that scrape.
            self.reckoning = load_steps.Reckoning(
                self.journal,
                Prometheus(self.plan.prometheus_url),
                self.locust,
                self.topo,
                t0,
                self.say,
                effects=getattr(recovery, "spans", []),
                quiet=recovery.quiet,
            ).start()
            self.reckoning.ended_by_load = {e["name"] for _, e, _ in self.schedule.active}
            if not self.reckoning.finished:  # Locust may still be sending: its figures first
                self.reckoning.scraped()
            self.schedule.rollback_all()
            self.journal.data["recovery"] = recovery.summary()

    def _snapshot(self) -> dict[str, Any]:
        """State worth recording just before a fault."""
        assert self.watchers is not None
        return {"vip_holders": self.watchers.vip_holders()}

    def _tick(self) -> None:
        """Called by the schedule while the load runs."""
        assert self.locust is not None
        if not self.locust.running():
            raise InfrastructureError(self.locust.why_not_running())
        self.recovery.tick()
        active = ", ".join(e["name"] for _, e, _ in self.schedule.active) if self.schedule else ""
        self.on_tick(time.time() - self._t0, self.topo.load.duration, active)

    def post_run(self) -> None:
        judge.post_run(self)

    def check_writes(self) -> tuple[int, int, list[str]]:
        assert self.plan and self.stack
        return writes.check(self.plan, self.stack.containers, self.run_dir)

    def check_testinfra(self, spec: Any, index: int) -> tuple[int, int]:
        return judge.testinfra(self, spec, index)

    def verdict(self) -> None:
        judge.verdict(self)

    def down(self) -> None:
        """Faults rolled back, Locust stopped, watchers and exporter closed; the run's
        containers and network removed unless --keep."""
        sequence.down(self, teardown)

    def report(self) -> None:
        """Report is a phase of the run: whoever calls execute() (the CLI, Python, pytest) gets
        journal.json, junit.xml and report.html."""
        write_reports(self.journal.data, self.run_dir)

    # ------------------------------------------------------------------ the whole run

    def _enter(self, phase: Phase) -> None:
        sequence.enter(self, phase)

    def bring_up(self) -> RunResult:
        """`harness up`: build, start and check the stack, then leave it running."""
        return sequence.bring_up(self)

    def execute(self) -> RunResult:
        return sequence.execute(self)

    def _abandon(self) -> None:
        sequence.abandon(self)

    def _cleanup(self) -> None:
        sequence.cleanup(self)
