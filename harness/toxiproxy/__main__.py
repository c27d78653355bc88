"""Command line entry point: ``python3 -m harness.toxiproxy [--host H] [--port P] [--seed N]``.

Runs in the foreground until SIGTERM/SIGINT (container stop, Ctrl-C), then closes the
listeners and live connections before exiting 0.  ``--config`` populates proxies at
start like ``toxiproxy-server -config``.  Uses uvloop when it happens to be installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
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
    server = ToxiproxyServer(args.host, args.port, seed=args.seed)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.config:
            with open(args.config, encoding="utf-8") as fh:
                proxies = await server.populate(json.load(fh))
            logging.getLogger("harness.toxiproxy").info("populated %d proxies", len(proxies))
        await stop.wait()
    finally:
        logging.getLogger("harness.toxiproxy").info("shutting down")
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
