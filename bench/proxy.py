"""Throughput and added latency of the embedded Toxiproxy against a direct connection (issue 14).

    python bench/proxy.py [--pairs 5] [--seconds 2] [--toxiproxy PATH/TO/toxiproxy-server]

Everything runs on loopback, each part in its own process: an upstream (HTTP/1.1 keep-alive,
``GET /N`` answers N bytes, ``GET /bulk`` streams until the client hangs up), the proxies
under test with one toxic-free proxy each in front of that upstream, and a load client.
The sides are: ``direct`` (client to upstream), ``embedded`` (``python -m harness.toxiproxy``
on the standard asyncio loop), ``embedded+uvloop`` (same, on uvloop, when it is installed)
and ``toxiproxy`` (a real Toxiproxy build, when ``--toxiproxy`` or $HARNESS_REAL_TOXIPROXY
names one).  A *pair* measures every side once per kind of traffic, in shuffled order, so
that the machine's drift hits all sides alike; the ratio side/direct is taken within each
pair and the median of those paired ratios is the figure (printed last).

Kinds: ``small`` (16 keep-alive connections, 100-byte responses, requests/s), ``64k`` (8
connections, 64 KiB responses, requests/s), ``bulk`` (one connection streaming, MB/s) and
``latency`` (one connection, one request at a time: p50/p99, the proxy's added latency is
the side's percentile minus direct's in the same pair).

Results go to bench/results/proxy-<time>.json.  Exit 0 when every embedded side's median
ratio reaches the goal (Toxiproxy's own ratios in issue 14, or the real build's when it ran),
1 when it does not, 2 when it could not measure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

KINDS = ("small", "64k", "bulk", "latency")
#: Toxiproxy 2.x's ratios against a direct connection on a 2-core machine (issue 14, best of
#: the measured range): the goal when no real build runs alongside.
ISSUE_GOAL = {"small": 0.69, "64k": 0.43, "bulk": 0.17}
SMALL, LARGE = 100, 64 * 1024


# -- the upstream (a child process) -----------------------------------------------------------
class _Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.streaming = False
        self.paused: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            path = head.split(b" ", 2)[1]
            if path == b"/bulk":
                self.streaming = True
                asyncio.ensure_future(self._stream())
                return
            size = int(path[1:])
            self.t.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + _BODY[:size])

    async def _stream(self) -> None:
        self.t.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        block = _BODY[: 256 * 1024]
        while not self.t.is_closing():
            self.t.write(block)
            if self.t.get_write_buffer_size() > 1 << 20:
                self.paused = asyncio.get_running_loop().create_future()
                await self.paused

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        if self.paused is not None and not self.paused.done():
            self.paused.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.resume_writing()


_BODY = b"x" * (256 * 1024)


async def _serve_upstream(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Upstream, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    await server.serve_forever()


# -- the load client (a child process) -------------------------------------------------------
class _Client(asyncio.Protocol):
    """Sends ``GET /size`` and waits for the whole response, over and over."""

    def __init__(self, size: int, stop: float, lat: list[float] | None) -> None:
        self.size, self.stop, self.lat = size, stop, lat
        self.req = b"GET /%d HTTP/1.1\r\nHost: u\r\n\r\n" % size
        self.want = len(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size) + size
        self.got = 0
        self.count = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.t = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._send()

    def _send(self) -> None:
        self.sent = time.perf_counter()
        self.t.write(self.req)

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got < self.want:
            return
        now = time.perf_counter()
        self.got -= self.want
        self.count += 1
        if self.lat is not None:
            self.lat.append(now - self.sent)
        if now >= self.stop:
            self.t.close()
        else:
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _Bulk(asyncio.Protocol):
    def __init__(self) -> None:
        self.bytes = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(b"GET /bulk HTTP/1.1\r\nHost: u\r\n\r\n")

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _measure(kind: str, port: int, seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    if kind == "bulk":
        transport, bulk = await loop.create_connection(_Bulk, "127.0.0.1", port)
        await asyncio.sleep(seconds)
        transport.close()
        return {"mb_s": bulk.bytes / (time.perf_counter() - start) / 1e6}
    lat: list[float] | None = [] if kind == "latency" else None
    conns, size = {"small": (16, SMALL), "64k": (8, LARGE), "latency": (1, SMALL)}[kind]
    stop = start + seconds
    clients = [
        (await loop.create_connection(lambda: _Client(size, stop, lat), "127.0.0.1", port))[1]
        for _ in range(conns)
    ]
    await asyncio.wait_for(asyncio.gather(*(c.done for c in clients)), seconds + 30)
    elapsed = time.perf_counter() - start
    result = {"req_s": sum(c.count for c in clients) / elapsed}
    if lat:
        lat.sort()
        result["p50_us"] = lat[len(lat) // 2] * 1e6
        result["p99_us"] = lat[int(len(lat) * 0.99)] * 1e6
    return result


def _run_loop(main: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


# -- the conductor ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _api(port: int, method: str, path: str, body: Any) -> Any:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data!r}")
    return json.loads(data)


def _start_proxy(
    cmd: list[str], env: dict[str, str], upstream: int
) -> tuple[subprocess.Popen[bytes], int]:
    api_port, listen = _free_port(), _free_port()
    proc = subprocess.Popen(
        [*cmd, str(api_port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _wait_port(api_port)
    body = {"name": "bench", "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{upstream}"}
    _api(api_port, "POST", "/proxies", body)
    return proc, listen


def _client(kind: str, port: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "_client", kind, str(port), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"client {kind} on port {port} failed: {out.stderr.strip()[-800:]}")
    return dict(json.loads(out.stdout))


def _headline(kind: str, result: dict[str, float]) -> float:
    return result["mb_s"] if kind == "bulk" else result["req_s"]


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def conduct(args: argparse.Namespace) -> int:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_port = _free_port()
        up = subprocess.Popen(
            [sys.executable, __file__, "_upstream", str(up_port)], stdout=subprocess.PIPE
        )
        procs.append(up)
        assert up.stdout is not None
        up.stdout.readline()
        sides: dict[str, int] = {"direct": up_port}
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        embedded = [sys.executable, "-m", "harness.toxiproxy", "--log-level", "WARNING", "--port"]
        loops = ["asyncio", *(["uvloop"] if _has_uvloop() else [])]
        for loop_name in loops:
            name = "embedded" if loop_name == "asyncio" else "embedded+uvloop"
            proc, port = _start_proxy(
                embedded, {**env, "HARNESS_TOXIPROXY_LOOP": loop_name}, up_port
            )
            procs.append(proc)
            sides[name] = port
        if args.toxiproxy:
            proc, port = _start_proxy([args.toxiproxy, "-port"], env, up_port)
            procs.append(proc)
            sides["toxiproxy"] = port
        print(f"sides: {', '.join(sides)}; {args.pairs} pairs x {args.seconds:g} s per measurement")
        samples: dict[str, dict[str, list[dict[str, float]]]] = {
            k: {s: [] for s in sides} for k in KINDS
        }
        for pair in range(args.pairs):
            for kind in KINDS:
                order = list(sides)
                random.shuffle(order)
                for side in order:
                    samples[kind][side].append(_client(kind, sides[side], args.seconds))
            print(f"pair {pair + 1}/{args.pairs} done", flush=True)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"could not measure: {exc}", file=sys.stderr)
        return 2
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
    return report(args, sides, samples)


def report(args: argparse.Namespace, sides: dict[str, int], samples: dict[str, Any]) -> int:
    from _common import machine, write_result

    summary: dict[str, Any] = {}
    print()
    print(f"{'kind':8} {'side':16} {'unit':6} {'min':>9} {'median':>9} {'max':>9}")
    for kind in KINDS:
        for side in sides:
            runs = samples[kind][side]
            if kind == "latency":
                for pct in ("p50_us", "p99_us"):
                    xs = [r[pct] for r in runs]
                    print(
                        f"{kind:8} {side:16} {pct:6} {min(xs):9.0f} {statistics.median(xs):9.0f} {max(xs):9.0f}"
                    )
                continue
            unit = "MB/s" if kind == "bulk" else "req/s"
            xs = [_headline(kind, r) for r in runs]
            print(
                f"{kind:8} {side:16} {unit:6} {min(xs):9.1f} {statistics.median(xs):9.1f} {max(xs):9.1f}"
            )
    print()
    print("median of paired ratios side/direct (and added latency, median of pairs):")
    for side in sides:
        if side == "direct":
            continue
        row: dict[str, Any] = {}
        for kind in ("small", "64k", "bulk"):
            ratios = [
                _headline(kind, a) / _headline(kind, d)
                for a, d in zip(samples[kind][side], samples[kind]["direct"], strict=True)
            ]
            row[kind] = {
                "median": statistics.median(ratios),
                "min": min(ratios),
                "max": max(ratios),
            }
        for pct in ("p50_us", "p99_us"):
            added = [
                a[pct] - d[pct]
                for a, d in zip(samples["latency"][side], samples["latency"]["direct"], strict=True)
            ]
            row[f"added_{pct}"] = statistics.median(added)
        summary[side] = row
    goal = {
        k: summary["toxiproxy"][k]["median"] if "toxiproxy" in summary else ISSUE_GOAL[k]
        for k in ISSUE_GOAL
    }
    met = True
    for side, row in summary.items():
        cells = "  ".join(f"{k} {row[k]['median']:.2f}x" for k in ("small", "64k", "bulk"))
        extra = f"  added p50 {row['added_p50_us']:.0f} us, p99 {row['added_p99_us']:.0f} us"
        print(f"  {side:16} {cells}{extra}")
        if side.startswith("embedded+uvloop") or (side == "embedded" and len(summary) == 1):
            met = met and all(row[k]["median"] >= goal[k] for k in goal)
    source = "the real Toxiproxy in this run" if "toxiproxy" in summary else "issue 14's Toxiproxy"
    print(f"goal (embedded >= {source}): " + ", ".join(f"{k} {v:.2f}x" for k, v in goal.items()))
    path = write_result(
        "proxy",
        {
            "machine": machine(),
            "config": {"pairs": args.pairs, "seconds": args.seconds, "sides": list(sides)},
            "samples": samples,
            "summary": summary,
            "goal": goal,
            "goal_met": met,
        },
    )
    print(f"saved {path.relative_to(ROOT)}")
    return 0 if met else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_upstream"]:
        _run_loop(_serve_upstream(int(argv[1])))
        return 0
    if argv[:1] == ["_client"]:
        print(json.dumps(_run_loop(_measure(argv[1], int(argv[2]), float(argv[3])))))
        return 0
    parser = argparse.ArgumentParser(
        prog="python bench/proxy.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--pairs", type=int, default=5, help="interleaved pairs (default 5)")
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement (default 2)")
    parser.add_argument(
        "--toxiproxy",
        default=os.environ.get("HARNESS_REAL_TOXIPROXY") or None,
        help="a toxiproxy-server binary to measure alongside",
    )
    args = parser.parse_args(argv)
    if args.pairs < 5:
        parser.error("--pairs must be at least 5 (interleaved A/B pairs)")
    return conduct(args)


if __name__ == "__main__":
    sys.exit(main())
