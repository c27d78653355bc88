"""Starts and stops the Locust child process; talks to it only through env, files and its
metrics endpoint (the harness process never imports locust)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from harness.errors import InfrastructureError
from harness.spec.models import Load


class LocustProcess:
    def __init__(self, load: Load, url: str, run_id: str, run_dir: Path, metrics_addr: str) -> None:
        self.load, self.url, self.run_id = load, url, run_id
        self.run_dir, self.metrics_addr = run_dir, metrics_addr
        self.release_file = run_dir / "locust.release"
        self.log_path = run_dir / "locust.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None

    def command(self) -> list[str]:
        load = self.load
        return [
            sys.executable, "-m", "harness.load.locust_main",
            "-f", load.locustfile, "--headless",
            "-u", str(load.users), "-r", f"{load.spawn_rate:g}",
            "-t", f"{math.ceil(load.duration)}s", "-H", self.url,
            "--only-summary", "--stop-timeout", "2", "--exit-code-on-error", "0",
            "--loglevel", "WARNING",
        ]

    def start(self) -> None:
        if not Path(self.load.locustfile).is_file():
            raise InfrastructureError(f"locustfile {self.load.locustfile} not found")
        env = dict(os.environ)
        env.update(
            HARNESS_RUN_ID=self.run_id,
            HARNESS_METRICS_ADDR=self.metrics_addr,
            HARNESS_EVENT_LOG=str(self.run_dir / "events.jsonl"),
            HARNESS_RELEASE_FILE=str(self.release_file),
        )
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            self.command(), env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()

    def wait_started(self, timeout: float = 30.0) -> float:
        """Block until the plugin reports the test start; return that instant (unix time)."""
        deadline = time.monotonic() + timeout
        url = f"http://{self.metrics_addr}/metrics"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise InfrastructureError(f"Locust exited at start (code {self.proc.returncode}): {self.log_tail()}")
            try:
                for line in httpx.get(url, timeout=1.0).text.splitlines():
                    if line.startswith("harness_load_started_timestamp_seconds "):
                        value = float(line.split()[1])
                        if value > 0:
                            self.started_at = value
                            return value
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise InfrastructureError(f"Locust did not start within {timeout:.0f}s: {self.log_tail()}")

    def log_tail(self, n: int = 8) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-n:])
        except OSError:
            return "(no log)"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def release(self, timeout: float = 15.0) -> None:
        """Let the child exit (the harness has the final figures) and reap it."""
        self.release_file.touch()
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stop()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.release_file.touch()
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue
