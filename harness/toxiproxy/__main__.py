"""Command line entry point: ``python3 -m harness.toxiproxy [--host H] [--port P] [--seed N]``.

Runs in the foreground until SIGTERM/SIGINT (container stop, Ctrl-C), then closes the
listeners and live connections before exiting 0.  Uses uvloop when it is installed.
``--config`` populates proxies *before* the API listens, like ``toxiproxy-server -config``,
so a readiness probe on the API implies the proxies are up; a bad config is fatal.
``HARNESS_TOXIPROXY_LOOP=asyncio`` forces the standard event loop even where uvloop exists.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from .server import VERSION, ToxiproxyServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.toxiproxy", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="API bind address")
    parser.add_argument("--port", type=int, default=8474, help="API port (default 8474)")
    parser.add_argument("--seed", type=int, default=None, help="seed toxicity/jitter decisions")
    parser.add_argument("--config", help="JSON file with a list of proxies to populate")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    parser.add_argument("--version", action="version", version=VERSION)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    log = logging.getLogger("harness.toxiproxy")
    server = ToxiproxyServer(args.host, args.port, seed=args.seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.config:  # before the API listens, as Toxiproxy does: API up => proxies up
            with open(args.config, encoding="utf-8") as fh:
                proxies = await server.populate(json.load(fh))
            log.info("populated %d proxies from %s", len(proxies), args.config)
        await server.start()
        await stop.wait()
    finally:
        log.info("shutting down")
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if os.environ.get("HARNESS_TOXIPROXY_LOOP", "uvloop") == "asyncio":
        asyncio.run(serve(args))  # the standard loop on demand (bench/proxy.py compares)
        return 0
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:  # Runner, not uvloop.run: Debian's python3-uvloop (0.17) predates uvloop.run
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
