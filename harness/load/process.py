"""Starts and stops the Locust processes: one local process, or Locust's own master plus
`workers` worker processes (the way past one generator core). The harness talks to them only
through env, files and their metrics endpoints: it never imports locust itself."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from harness.errors import InfrastructureError
from harness.observe import metrics
from harness.spec.models import Load

SHAPE = Path(__file__).with_name("shape.py")


class LocustProcess:
    def __init__(
        self,
        load: Load,
        url: str,
        run_id: str,
        run_dir: Path,
        metrics_addrs: list[str],
        master_port: int = 5557,
        ui: bool = False,
    ) -> None:
        if len(metrics_addrs) != 1 + load.workers:
            raise ValueError("one metrics address per Locust process (master + workers)")
        self.load, self.url, self.run_id, self.run_dir = load, url, run_id, run_dir
        self.metrics_addrs, self.ui = metrics_addrs, ui
        self.master_port = load.master.port or master_port
        # the local workers reach the master where it listens (loopback when it listens everywhere)
        bind = load.master.bind
        self.master_host = "127.0.0.1" if bind == "0.0.0.0" else bind
        self.metrics_addr = metrics_addrs[0]
        self.release_file = run_dir / "locust.release"
        self.log_path = run_dir / "locust.log"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.go_file: Path | None = None  # set when the processes were started ahead (prestart)
        self.started_at: float | None = None

    def _files(self) -> str:
        return f"{self.load.locustfile},{SHAPE}" if self.load.stages else self.load.locustfile

    def command(self, role: str = "local") -> list[str]:
        load = self.load
        cmd = [
            sys.executable,
            "-m",
            "harness.load.locust_main",
            "-f",
            self._files(),
            "--loglevel",
            "WARNING",
        ]
        if role == "worker":
            return cmd + [
                "--worker",
                "--master-host",
                self.master_host,
                "--master-port",
                str(self.master_port),
            ]
        if self.ui:
            cmd += ["--autostart", "--autoquit", "5", "--web-host", "127.0.0.1"]
        else:
            cmd += ["--headless", "--only-summary"]
        if not load.stages:
            cmd += [
                "-u",
                str(load.users),
                "-r",
                f"{load.spawn_rate:g}",
                "-t",
                f"{math.ceil(load.duration)}s",
            ]
        cmd += ["-H", self.url, "--stop-timeout", "2", "--exit-code-on-error", "0"]
        if role == "master":
            cmd += [
                "--master",
                "--expect-workers",
                str(load.total_workers),
                "--master-bind-host",
                load.master.bind,
                "--master-bind-port",
                str(self.master_port),
            ]
        return cmd + list(load.user_classes)

    def _env(self, role: str, addr: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HARNESS_RUN_ID=self.run_id,
            HARNESS_METRICS_ADDR=addr,
            HARNESS_LOCUST_ROLE=role,
            HARNESS_EVENT_LOG=str(
                self.run_dir
                / ("events.jsonl" if role != "worker" else f"events-{addr.rsplit(':', 1)[1]}.jsonl")
            ),
            HARNESS_RELEASE_FILE=str(self.release_file),
            HARNESS_STAGES=json.dumps([s.model_dump() for s in self.load.stages]),
            HARNESS_USER_WEIGHTS=json.dumps(
                {k: v.weight for k, v in self.load.user_classes.items()}
            ),
            HARNESS_RATE=str(self.load.rate or ""),
            HARNESS_GO_FILE=str(self.run_dir / "locust.go"),
            HARNESS_PARENT_PID=str(os.getpid()),
        )
        return env

    def prestart(self) -> None:
        """Start the processes ahead of the load (e.g. while the baseline is checked): each
        imports Locust meanwhile and waits; `start()` lets them go. Killed by `stop()` like
        started ones; a process left waiting exits by itself when the harness is gone."""
        self.go_file = self.run_dir / "locust.go"
        self._spawn("harness.load.standby")

    def start(self) -> None:
        if self.procs and self.go_file is not None:  # started ahead: let them go
            self.go_file.touch()
            return
        self._spawn("harness.load.locust_main")

    def _spawn(self, entry: str) -> None:
        if not Path(self.load.locustfile).is_file():
            raise InfrastructureError(f"locustfile {self.load.locustfile} not found")
        roles = ["master"] + ["worker"] * self.load.workers if self.load.distributed else ["local"]
        with open(self.log_path, "ab") as log:
            for role, addr in zip(roles, self.metrics_addrs, strict=True):
                cmd = self.command(role)
                cmd[cmd.index("harness.load.locust_main")] = entry
                self.procs.append(
                    subprocess.Popen(
                        cmd,
                        env=self._env(role, addr),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )

    def _gauge(self, addr: str, metric: metrics.Metric) -> float | None:
        """A gauge of one process's metrics endpoint, read directly (no Prometheus); None when
        the endpoint does not answer or does not export it."""
        try:
            text = httpx.get(f"http://{addr}/metrics", timeout=1.0).text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith(f"{metric.name} "):
                return float(line.split()[1])
        return None

    def wait_started(self, timeout: float = 45.0) -> float:
        """Block until the plugin reports the test start; return that instant (unix time)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise InfrastructureError(
                        f"Locust exited at start (code {p.returncode}): {self.log_tail()}"
                    )
            value = self._gauge(self.metrics_addr, metrics.LOAD_STARTED)
            if value is not None and value > 0:
                self.started_at = value
                return value
            time.sleep(0.1)
        raise InfrastructureError(f"Locust did not start within {timeout:.0f}s: {self.log_tail()}")

    def wait_finished(self, timeout: float = 10.0) -> bool:
        """Block until every live local process reports its test stopped (its final figures
        are set and it sends nothing more; a master reports it once its workers have stopped),
        read from their own endpoints. A process that has exited sends nothing either: it
        is waited for no more (a worker may drop out; the final scrape judges it). False when
        `timeout` passed first: one may still be sending."""
        deadline = time.monotonic() + timeout
        pending = list(zip(self.procs, self.metrics_addrs, strict=False))
        while pending and time.monotonic() < deadline:
            pending = [
                (p, addr)
                for p, addr in pending
                if p.poll() is None and not (self._gauge(addr, metrics.LOAD_FINISHED) or 0) > 0
            ]
            if pending:
                time.sleep(0.05)
        return not pending

    def log_tail(self, n: int = 8) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-n:])
        except OSError:
            return "(no log)"

    def running(self) -> bool:
        """The master (or the single process) is alive, and enough local workers with it that
        `load.min_workers` can still hold; a worker that dropped out is judged at the end."""
        if not self.procs or self.procs[0].poll() is not None:
            return False
        lost = sum(1 for p in self.procs[1:] if p.poll() is not None)
        return self.load.total_workers - lost >= self.min_workers

    @property
    def min_workers(self) -> int:
        m = self.load.min_workers
        return self.load.total_workers if m is None else m

    def dead_local_workers(self) -> list[str]:
        """The scrape target names of the local worker processes that have exited."""
        return [
            f"locust-worker-{i}" for i, p in enumerate(self.procs[1:], 1) if p.poll() is not None
        ]

    def why_not_running(self) -> str:
        if self.procs and self.procs[0].poll() is None:
            dead = self.dead_local_workers()
            return (
                f"Locust worker(s) {', '.join(dead)} exited mid-run, leaving fewer than "
                f"load.min_workers {self.min_workers} (inconclusive): {self.log_tail()}"
            )
        return f"Locust exited early: {self.log_tail()}"

    def release(self, timeout: float = 15.0) -> None:
        """Let the processes exit (the harness has the final figures) and reap them."""
        self.release_file.touch()
        deadline = time.monotonic() + timeout
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
        self.stop()

    def stop(self) -> None:
        self.release_file.touch()
        for p in self.procs:
            for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                if p.poll() is not None:
                    break
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
