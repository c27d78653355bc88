"""bench/load.py --profile: attach py-spy (PyPI `py-spy`: `.venv/bin/pip install py-spy`) to a
Locust process and read its collapsed stacks ("frame;frame;...;leaf count" per line, frames as
`function (file:line)`) into the few figures that explain a CPU difference: where the samples
end (self time by function), and how much of the process's time runs inside the harness's own
plugin code (harness/load/*, module-level import frames aside)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import BenchError

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
OURS = re.compile(r"(^|/)harness/load/")
# Locust's own request methods the plugin wraps: time under them is Locust's, not the plugin's
ORIGINAL = ("FastHttpSession.request (", "HttpSession.request (")


def pyspy() -> str:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(exe).exists():
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    return exe


class Recorder(threading.Thread):
    """Starts py-spy on `pid` once `marks` holds `lines` lines (the locustfile's steady-window
    marks, see bench/locustfiles/health.py) and records for `seconds` (non-blocking sampling:
    the target never pauses)."""

    def __init__(self, pid: int, out: Path, marks: Path, lines: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.out, self.marks, self.lines, self.seconds = pid, out, marks, lines, seconds
        self.exe, self.error = pyspy(), ""
        self.start()

    def run(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if len(self.marks.read_text().splitlines()) >= self.lines:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        else:
            self.error = f"no steady-window mark in {self.marks}"
            return
        cmd = [self.exe, "record", "--pid", str(self.pid), "--format", "raw"]
        cmd += ["--output", str(self.out), "--rate", "250", "--nonblocking"]
        cmd += ["--duration", str(max(1, int(self.seconds)))]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.seconds + 60)
        if done.returncode != 0 or not self.out.exists():
            self.error = f"py-spy exited {done.returncode}: {(done.stdout + done.stderr)[-300:]}"

    def result(self) -> None:
        self.join(120)
        if self.error:
            raise BenchError(self.error)


def _short(frame: str) -> tuple[str, str]:
    """(`function (file)` with site-packages and the repository stripped, the full file)."""
    m = FRAME.match(frame)
    if not m:
        return frame, ""
    path = m["file"]
    short = re.sub(r"^.*?(site-packages|lib/python3\.\d+)/", "", path)
    short = re.sub(r"^.*?/(harness|bench)/", r"\1/", short)
    return f"{m['func']} ({short})", path


def summarize(path: Path, requests: int, top: int = 12) -> dict[str, Any]:
    """Self time by function, inclusive and own time of the harness's plugin functions (own:
    the plugin's code and what it calls, minus the Locust request it wraps), all in % of all
    samples, and samples per 1,000 requests."""
    selfs: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    own: Counter[str] = Counter()  # by the innermost plugin function, its callees included
    total = ours = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        selfs[frames[-1][0]] += count
        mine = {
            name
            for name, file in frames
            if OURS.search(file) and not name.startswith("<module>") and "locust_main" not in file
        }
        for name in mine:
            incl[name] += count
        ours += count if mine else 0
        at = [i for i, (name, file) in enumerate(frames) if name in mine and OURS.search(file)]
        if at and not any(n.startswith(ORIGINAL) for n, _ in frames[at[-1] + 1 :]):
            own[frames[at[-1]][0]] += count
    if not total:
        raise BenchError(f"py-spy recorded no samples in {path}")

    def pct(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100.0 * v / total, 1)) for k, v in c.most_common(top)]

    return {
        "samples": total,
        "requests": requests,
        "samples_per_1k_requests": round(1000.0 * total / requests, 1) if requests else None,
        "harness_plugin_inclusive_pct": round(100.0 * ours / total, 1),
        # the plugin's own work: samples in its code or what it calls, Locust's request aside
        "harness_plugin_own_pct": round(100.0 * sum(own.values()) / total, 1),
        "harness_own_by_function_pct": pct(own),
        "top_self_pct": pct(selfs),
        "harness_functions_inclusive_pct": pct(incl),
        "file": str(path),
    }
