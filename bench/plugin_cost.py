"""The harness plugin's CPU per request, without Docker or network (issue 15, ask 3): Locust's
real `FastHttpSession.request` and its real `request` event, with the harness's listeners on
against Locust's own stats alone, in interleaved pairs inside one process.

  on    what the harness adds to every request: the session's request wrapped by
        harness.load.tracking (in-flight tracking), the user class's context() wrapped by
        harness.load.userclass (the user's key), and harness.load.plugin's request listener
        (RequestStats, ClientState), beside Locust's own stats listener
  off   the same users and session class unwrapped, Locust's own stats listener only

Both sides send `GET /health` from --users users in turn through `user.client.get()`. Only the
socket is left out: the session's `_send_request_safe_mode` returns a canned FastResponse (200,
X-Served-By and X-LB headers in geventhttpclient's own Headers), built anew for each request on
both sides. `event` sides fire `events.request` alone (the listeners' cost, no request wrapper).
CPU per request is process CPU time (time.process_time) over --requests requests; each pair runs
on and off back to back in alternating order; a figure is the median over pairs.

The measuring runs in child processes (importing locust gevent-patches a process).
--compare COMMIT: the harness package of COMMIT (`git archive`, into a temp dir) is measured
too, children of both trees interleaved, and the plugin's added µs per request (on - off) of
the working tree is compared with the commit's.

The last line: the working tree's on/off ratio of CPU per request (the plugin's cost relative
to Locust's request path without the network; in situ, bench/load.py, Locust's socket and
parsing add ~400 µs to both sides). Results: bench/results/plugin-cost-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    BenchError,
    console,
    fmt_mmm,
    machine,
    mmm,
    paired_ratios,
    parser,
    ratio_last,
    say,
    shown,
    sides_table,
    write_result,
)

SIDES = ("request", "event")  # the whole request path, the request event alone


def parse(argv: list[str] | None) -> Any:
    p = parser("plugin_cost", __doc__)
    p.add_argument("--pairs", type=int, default=7, help="on/off pairs per child (default 7)")
    p.add_argument("--rounds", type=int, default=3, help="child processes per tree (default 3)")
    p.add_argument("--requests", type=int, default=20000, help="requests per side (20000)")
    p.add_argument("--users", type=int, default=20, help="simulated users, in turn (20)")
    p.add_argument("--compare", metavar="COMMIT", help="also measure COMMIT's harness package")
    p.add_argument("--child", metavar="TREE", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- inside a child process -------------------------------------------------------------------


def _child(tree: str, pairs: int, requests: int, users: int) -> dict[str, Any]:
    sys.path.insert(0, tree)  # this tree's harness package before any other
    os.environ.pop("HARNESS_METRICS_ADDR", None)  # the plugin registers nothing on import
    import locust
    from geventhttpclient.header import Headers
    from locust import FastHttpUser, constant, events
    from locust.contrib.fasthttp import FastHttpSession, FastResponse
    from locust.env import Environment
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from harness.load import plugin, tracking

    if not plugin.__file__ or not plugin.__file__.startswith(tree):
        raise BenchError(f"imported {plugin.__file__}, not the plugin under {tree}")

    class Canned:  # what FastResponse reads of geventhttpclient's response
        _headers_index = Headers({"X-Served-By": "web-1", "X-LB": "lb-1", "Content-Length": "2"})

        def get_code(self) -> int:
            return 200

    canned = Canned()

    def send(method: str, url: str, **_kw: Any) -> FastResponse:
        resp = FastResponse(canned)  # type: ignore[arg-type]
        resp._cached_content = b"ok"
        return resp

    class TrackedSession(FastHttpSession):
        request = tracking._tracked_request(FastHttpSession.request)

    class Off(FastHttpUser):
        host = "http://bench.invalid"
        wait_time = constant(0)

    class On(FastHttpUser):
        host = "http://bench.invalid"
        wait_time = constant(0)

    plugin.instrument_user_class(On)
    env = Environment(user_classes=[On, Off], events=locust.events, host=Off.host)
    env.create_local_runner()  # registers Locust's own stats listener on events.request

    def make(cls: type, session: type) -> list[Any]:
        out = []
        for _ in range(users):
            u = cls(env)
            u.client.__class__ = session
            u.client._send_request_safe_mode = send
            out.append(u)
        return out

    crowd = {"on": make(On, TrackedSession), "off": make(Off, FastHttpSession)}
    listeners = events.request._handlers

    def switch(on: bool) -> None:
        if on and plugin._on_request not in listeners:
            events.request.add_listener(plugin._on_request)
        if not on and plugin._on_request in listeners:
            events.request.remove_listener(plugin._on_request)

    def run_requests(side: str, n: int) -> float:
        clients = [u.client for u in crowd[side]]
        k = len(clients)
        gc.collect()
        t0 = time.process_time()
        for i in range(n):
            clients[i % k].get("/health")
        return time.process_time() - t0

    def run_events(side: str, n: int) -> float:
        resp = send("GET", "/health")
        ctxs = [{"harness_user": i + 1} if side == "on" else {} for i in range(users)]
        fire = events.request.fire
        gc.collect()
        t0 = time.process_time()
        for i in range(n):
            fire(
                request_type="GET",
                name="/health",
                context=ctxs[i % users],
                response=resp,
                exception=None,
                start_time=0.0,
                url="http://bench.invalid/health",
                response_length=2,
                response_time=1.0,
            )
        return time.process_time() - t0

    result: dict[str, Any] = {"plugin": plugin.__file__}
    for what, fn in (("request", run_requests), ("event", run_events)):
        for side in ("on", "off"):  # warm-up
            switch(side == "on")
            fn(side, max(1000, requests // 10))
        us: dict[str, list[float]] = {"on": [], "off": []}
        for p in range(pairs):
            for side in ("on", "off") if p % 2 == 0 else ("off", "on"):
                switch(side == "on")
                us[side].append(1e6 * fn(side, requests) / requests)
        result[what] = us
    # the on sides really went through the plugin: its exported request count
    text = generate_latest(plugin.REGISTRY).decode()
    result["counted"] = sum(
        s.value
        for f in text_string_to_metric_families(text)
        if f.name == "harness_requests"
        for s in f.samples
        if s.name == "harness_requests_total"
    )
    if tracking._inflight:
        raise BenchError(f"{len(tracking._inflight)} requests left in flight")
    return result


# -- the parent --------------------------------------------------------------------------------


def _tree_of(commit: str, into: Path) -> str:
    """COMMIT's harness package extracted under `into`; returns the resolved commit."""
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", commit],
        capture_output=True,
        text=True,
    )
    if rev.returncode != 0:
        raise BenchError(f"--compare {commit}: {rev.stderr.strip()}")
    blob = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev.stdout.strip(), "harness"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return rev.stdout.strip()


def _run_child(tree: Path, args: Any) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(tree), "--pairs", str(args.pairs)]
    cmd += ["--requests", str(args.requests), "--users", str(args.users)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    if done.returncode != 0:
        raise BenchError(f"child for {tree} exited {done.returncode}: {done.stderr[-800:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _summary(children: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for what in SIDES:
        on = [x for c in children for x in c[what]["on"]]
        off = [x for c in children for x in c[what]["off"]]
        added = [a - b for a, b in zip(on, off, strict=True)]
        out[what] = {
            "on_us": mmm(on),
            "off_us": mmm(off),
            "added_us": mmm(added),
            "ratio": mmm(paired_ratios(on, off)),
            "pairs": {"on": on, "off": off, "added": added},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.pairs, args.requests, args.users)))
        return 0
    info = machine()
    trees: dict[str, Path] = {"working tree": ROOT}
    children: dict[str, list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-plugin-") as tmpd:
            if args.compare:
                rev = _tree_of(args.compare, Path(tmpd))
                trees[f"commit {rev}"] = Path(tmpd)
            for r in range(args.rounds):
                order = list(trees) if r % 2 == 0 else list(trees)[::-1]
                for label in order:
                    say(f"round {r + 1}/{args.rounds}: {label}")
                    children.setdefault(label, []).append(_run_child(trees[label], args))
    except (BenchError, subprocess.SubprocessError, OSError) as exc:
        console.print(f"[red]bench/plugin_cost could not measure:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]")
        return 2
    summary = {label: _summary(cs) for label, cs in children.items()}
    for what in SIDES:
        sides_table(
            f"{what}: CPU µs per request, plugin on / off ({args.rounds} x {args.pairs} pairs, "
            f"{args.requests} requests a side)",
            {
                f"{label} {s}": summary[label][what]["pairs"][s]
                for label in summary
                for s in ("on", "off", "added")
            },
            spec=".2f",
            unit="µs",
        )
    cmp: dict[str, Any] = {}
    if args.compare:
        new, old = summary["working tree"], summary[next(k for k in summary if k != "working tree")]
        for what in SIDES:
            cmp[what] = {
                "added_us_now": new[what]["added_us"]["median"],
                "added_us_before": old[what]["added_us"]["median"],
            }
            console.print(
                f"{what}: the plugin adds {fmt_mmm(new[what]['added_us'])} µs per request now, "
                f"{fmt_mmm(old[what]['added_us'])} µs at {args.compare}"
            )
    info["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = write_result(
        "plugin-cost",
        {
            "bench": "plugin_cost",
            "config": {k: v for k, v in vars(args).items() if k != "child"},
            "machine": info,
            "summary": summary,
            "compare": cmp,
            "children": children,
        },
    )
    console.print(f"result: {shown(path)}; load average {info['loadavg_at_start']} at start")
    for what in ("event", "request"):
        pairs = summary["working tree"][what]["pairs"]
        ratio_last(
            f"{what}: plugin on/off CPU per request (working tree)",
            paired_ratios(pairs["on"], pairs["off"]),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
