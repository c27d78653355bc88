"""One run, as an explicit sequence of phases (validate, build, up, baseline, load + chaos,
verdict, report, down), each journaled. Whatever happens (an assertion fails, Docker errors,
Ctrl-C, SIGTERM), faults are rolled back, Locust is stopped and the run's resources are removed.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.chaos.base import FaultContext
from harness.chaos.schedule import Schedule
from harness.errors import EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, HarnessError, InfrastructureError
from harness.load.process import LocustProcess
from harness.observe.exporter import HarnessExporter, free_port
from harness.observe.prom import Prometheus
from harness.plan.build import make_plan, with_prometheus
from harness.plan.model import RunPlan, ScrapeTarget
from harness.report import collect
from harness.report.journal import Journal
from harness.runtime import images
from harness.runtime.signals import exit_signals, shielded
from harness.runtime.stack import Stack, create_network, teardown
from harness.spec.loader import load_topology
from harness.spec.models import Topology
from harness.verdict.assertions import FAILED, PASSED, Result, evaluate
from harness.verdict.windows import Span, Timeline
from harness.watch.state import wait_steady

Say = Callable[[str], None]


def new_run_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    exit_code: int
    status: str
    results: list[Result] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def build_images(topo: Topology, say: Say, base_dir: Path = Path(".")) -> dict[str, str]:
    names = {c.image for c in make_plan(with_prometheus(topo), "x", "10.0.0.0/24", [], base_dir=base_dir).containers
             if c.builtin_image}
    return {name: images.build(name, say) for name in sorted(names)}


class Run:
    def __init__(self, topology_file: str | Path, runs_dir: Path = Path("runs"), keep: bool = False,
                 say: Say = print) -> None:
        self.topology_file = str(topology_file)
        self.topo = load_topology(topology_file)  # validate: nothing is started before this passes
        self.run_id = new_run_id()
        self.run_dir = runs_dir / self.run_id
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.keep, self.say = keep, say
        self.journal = Journal(self.run_dir, self.run_id, self.topo.name, self.topology_file)
        self.plan: RunPlan | None = None
        self.stack: Stack | None = None
        self.locust: LocustProcess | None = None
        self.exporter: HarnessExporter | None = None
        self.schedule: Schedule | None = None
        self.prom: Prometheus | None = None
        self.timeline: Timeline | None = None

    # ------------------------------------------------------------------ phases

    def _up(self) -> None:
        with self.journal.phase("build"):
            tags = build_images(self.topo, self.say, Path(self.topology_file).parent)
        with self.journal.phase("up") as ph:
            network, subnet = create_network(self.run_id, self.topo.name)
            gateway = str(network.attrs["IPAM"]["Config"][0].get("Gateway") or subnet.rsplit(".", 1)[0] + ".1")
            locust_addr = f"{gateway}:{free_port(gateway)}"
            self.exporter = HarnessExporter(gateway, free_port(gateway))
            exporters = [
                ScrapeTarget("locust", locust_addr, "locust"),
                ScrapeTarget("harness", f"{gateway}:{self.exporter.server.server_port}", "harness"),
            ]
            self.plan = make_plan(self.topo, self.run_id, subnet, exporters, base_dir=Path(self.topology_file).parent)
            self.stack = Stack(self.plan, network, self.say)
            self.stack.image_tags = tags
            self.stack.up()
            self.locust = LocustProcess(self.topo.load, self.plan.load_url, self.run_id, self.run_dir, locust_addr)
            self.prom = Prometheus(self.plan.prometheus_url)
            ph.update(subnet=subnet, load_url=self.plan.load_url, vips=self.plan.vips,
                      containers={c.instance: c.ip for c in self.plan.containers})

    def _baseline(self) -> None:
        assert self.plan and self.prom and self.stack
        with self.journal.phase("baseline") as ph:
            ph.update(wait_steady(self.plan, self.prom, self.stack.containers))

    def _load_and_chaos(self) -> None:
        assert self.plan and self.locust and self.stack and self.prom and self.exporter
        load = self.topo.load
        with self.journal.phase("load"):
            self.locust.start()
            t0 = self.locust.wait_started()
            self.journal["load_started_at"] = t0
            self.say(f"load: {load.users} users for {load.duration:g}s through {self.plan.load_url}")
            ctx = FaultContext(self.stack.containers, self.run_id, self.plan, random.Random(self.topo.seed))
            exporter = self.exporter

            def notify(event: str, entry: dict[str, Any]) -> None:
                gauge = exporter.fault_start if event == "injected" else exporter.fault_end
                ts = entry["injected_at"] if event == "injected" else entry["rolled_back_at"]
                gauge.labels(entry["name"], entry["kind"], entry["target"]).set(ts)
                self.say(f"fault {event.replace('_', ' ')}: {entry['name']} ({entry['kind']} {entry['target']})")

            self.schedule = Schedule(self.topo.chaos, ctx, self.journal, notify)

            def check_locust() -> None:
                assert self.locust is not None
                if not self.locust.running():
                    raise InfrastructureError(f"Locust exited early: {self.locust.log_tail()}")

            self.schedule.run(t0, t0 + load.duration, check_locust)
            self.schedule.rollback_all()
            # The last figures count only once Prometheus has scraped them after Locust stopped.
            finished = f'timestamp(harness_load_finished_timestamp_seconds{{run="{self.run_id}"}} > 0)'
            end = self.prom.wait_for(finished, timeout=30.0)
            if end is None:
                raise InfrastructureError(f"Locust's final figures never reached Prometheus: {self.locust.log_tail()}")
            self.locust.release()
            faults = {
                f["name"]: Span(f["injected_at"], f["rolled_back_at"] or f["injected_at"])
                for f in self.journal["faults"] if f["injected_at"]
            }
            self.timeline = Timeline(t0, end, faults)
            self.journal["load_ended_at"] = end

    def _verdict(self) -> list[Result]:
        assert self.prom and self.timeline
        with self.journal.phase("verdict"):
            results = [evaluate(a, self.prom, self.run_id, self.timeline) for a in self.topo.assertions]
            self.journal["assertions"] = [r.as_dict() for r in results]
            self.journal["summary"] = collect.summary(self.prom, self.run_id, self.timeline)
            self.journal["series"] = collect.series(self.prom, self.run_id, self.timeline)
        return results

    # ------------------------------------------------------------------ the whole run

    def bring_up(self) -> RunResult:
        """`harness up`: build, start and check the stack, then leave it running."""
        result = RunResult(self.run_id, self.run_dir, EXIT_INCONCLUSIVE, "error")
        with exit_signals():
            try:
                self._up()
                self._baseline()
                result.exit_code, result.status = EXIT_OK, "up"
            except HarnessError as exc:
                result.error, result.exit_code = str(exc), exc.exit_code
                with shielded():
                    self.keep = False
                    self._cleanup()
            finally:
                if self.exporter is not None:
                    self.exporter.close()
        self.journal.data.update(status=result.status, exit_code=result.exit_code)
        self.journal.save()
        return result

    def execute(self) -> RunResult:
        result = RunResult(self.run_id, self.run_dir, EXIT_INCONCLUSIVE, "error")
        with exit_signals():
            try:
                self._up()
                self._baseline()
                self._load_and_chaos()
                result.results = self._verdict()
                failed = any(r.status == FAILED for r in result.results)
                all_ok = all(r.status == PASSED for r in result.results)
                result.exit_code = EXIT_FAILED if failed else (EXIT_OK if all_ok else EXIT_INCONCLUSIVE)
                result.status = "failed" if failed else ("passed" if all_ok else "inconclusive")
            except HarnessError as exc:
                result.error = str(exc)
                result.exit_code = exc.exit_code
                result.status = "interrupted" if exc.__class__.__name__ == "Interrupted" else (
                    "inconclusive" if exc.__class__.__name__ == "Inconclusive" else "error")
                self.journal.data["error"] = result.error
            finally:
                with shielded():
                    self._cleanup()
        result.summary = self.journal["summary"]
        self.journal.data.update(status=result.status, exit_code=result.exit_code, ended_at=time.time())
        self.journal.save()
        return result

    def _cleanup(self) -> None:
        if self.schedule is not None:
            self.schedule.rollback_all()
        if self.locust is not None:
            self.locust.stop()
        if self.exporter is not None:
            self.exporter.close()
        if self.keep and self.plan is not None:
            self.say(f"--keep: run {self.run_id} left up; remove it with `harness down {self.run_id}`")
            return
        with self.journal.phase("down") as ph:
            removed = teardown(self.run_id)
            ph.update(containers_removed=removed[0], networks_removed=removed[1])
