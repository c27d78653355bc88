"""`harness worker --master HOST[:PORT] LOCUSTFILE`: a Locust worker on another machine joining
the master a run started (the run's topology sets `load.master: {bind, port}` and lists this
worker's metrics address under `load.master.remote_workers`).

The worker runs the harness's own Locust entry point, so it exports the same metrics as the
run's local processes; the run's Prometheus scrapes them at the address the topology lists. It
cannot see the run's release file, so it stays up after the load until Prometheus has scraped
its final figures a few times (`--final-scrapes`) and `--linger` seconds have passed, then exits."""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.errors import EXIT_OK, SpecError

DEFAULT_MASTER_PORT = 5557
DEFAULT_METRICS = "0.0.0.0:9646"


def _invalid(msg: str) -> SpecError:
    return SpecError([msg])


def parse_master(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, str(DEFAULT_MASTER_PORT)
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _invalid(
            f"--master {value!r}: not HOST[:PORT] (write the address the run's load.master "
            "binds, e.g. --master 10.0.0.5:5557)"
        )
    return host, int(port)


def parse_metrics(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise _invalid(
            f"--metrics {value!r}: not ADDR:PORT (write the address the topology lists under "
            "load.master.remote_workers, e.g. --metrics 10.0.0.7:9646)"
        )
    return value


def command(host: str, port: int, locustfile: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness.load.locust_main",
        "-f",
        locustfile,
        "--loglevel",
        "WARNING",
        "--worker",
        "--master-host",
        host,
        "--master-port",
        str(port),
    ]


def environment(
    metrics_addr: str, final_scrapes: int, rate: float | None, linger: float = 10.0
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env.update(
        HARNESS_METRICS_ADDR=metrics_addr,
        HARNESS_LOCUST_ROLE="worker",
        HARNESS_RELEASE_SCRAPES=str(final_scrapes),
        HARNESS_METRICS_EARLY="1",
        HARNESS_RELEASE_LINGER=str(linger),
        HARNESS_RATE=str(rate or ""),
    )
    return env


def _die_with_parent() -> None:
    """In the child: SIGKILL when `harness worker` dies, however it dies (Linux prctl)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def run(args: argparse.Namespace) -> int:
    host, port = parse_master(args.master)
    metrics_addr = parse_metrics(args.metrics)
    locustfile = Path(args.locustfile)
    if not locustfile.is_file():
        raise _invalid(f"{args.locustfile}: no such locustfile (give the path of a Python file)")
    if args.final_scrapes < 1:
        raise _invalid(
            "--final-scrapes must be 1 or more (the run needs the worker's last figures)"
        )
    proc = subprocess.Popen(
        command(host, port, str(locustfile.resolve())),
        env=environment(metrics_addr, args.final_scrapes, args.rate, args.linger),
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - the worker dies with `harness worker`
    )
    print(
        f"worker: joining the master at {host}:{port}; metrics on {metrics_addr} "
        f"(list it under load.master.remote_workers)",
        file=sys.stderr,
    )

    def forward(signum: int, _frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, forward)
    code = proc.wait()
    return EXIT_OK if code == 0 else 2


def add_parser(sub: Any) -> None:
    """The `worker` subcommand, registered by the CLI."""
    w = sub.add_parser(
        "worker",
        help="a Locust worker joining a run's master from this machine (load.master)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    w.add_argument("--master", required=True, metavar="HOST[:PORT]", help="the run's master")
    w.add_argument("locustfile", help="the same locustfile the run's topology names")
    w.add_argument(
        "--metrics",
        default=DEFAULT_METRICS,
        metavar="ADDR:PORT",
        help=f"where this worker exports its metrics (default {DEFAULT_METRICS})",
    )
    w.add_argument(
        "--final-scrapes",
        type=int,
        default=3,
        help="scrapes of the final figures to wait for before exiting (default 3)",
    )
    w.add_argument(
        "--linger",
        type=float,
        default=10.0,
        help="seconds to stay up after the load at least, for the run's last scrapes (default 10)",
    )
    w.add_argument("--rate", type=float, help="the topology's load.rate, if it sets one")
    w.set_defaults(func=run)


__all__ = ["add_parser", "command", "parse_master", "run"]
