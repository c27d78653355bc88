"""Mutation run over the shipped topologies: `harness validate` never crashes, every problem is
one line with a fix part, and whatever it accepts `make_plan` builds and the JSON Schema accepts.

    .venv/bin/python -m tests.fuzz_validate --cases 10000 [--seed 1] [--cli-every 10]

Each case takes a shipped topology (topologies/*.yaml, topologies/examples/*.yaml), applies one
to three mutations (delete, misspell or retype a key, corrupt a reference, duplicate a list item,
add a service, a depends_on entry or a link, set a field to a boundary value, or damage the text
itself: duplicate or drop a line, insert a character), writes it next to a copy of the file's
own directory (so its relative paths still resolve) and loads it. The findings, none expected:

    crash        an exception other than SpecError (the CLI's "internal error", exit 2)
    plan         make_plan fails on a topology validation accepted
    schema       the JSON Schema (`harness schema`) rejects a topology validation accepted
    format       a problem that is not one `file:line: field: problem (fix)` line inside the file
    cli          `harness validate` exits other than 0 or 3, or prints a line without its fix

The mutation engine is shared with the hypothesis tests (tests/unit/test_spec_property.py): a
`Chooser` makes every random choice, from `random.Random` here and from hypothesis there.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import copy
import io
import ipaddress
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = ROOT / "topologies"
SHIPPED = sorted(TOPOLOGIES.glob("*.yaml")) + sorted((TOPOLOGIES / "examples").glob("*.yaml"))
SOURCES = {p.relative_to(TOPOLOGIES).as_posix(): yaml.safe_load(p.read_text()) for p in SHIPPED}
TEXTS = {p.relative_to(TOPOLOGIES).as_posix(): p.read_text() for p in SHIPPED}

PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<field>\S+): (?P<msg>.+)$")
FIX = re.compile(r" \(.+\)$")
FALLBACK_FIX = "see `harness schema` for what is allowed here"  # harness/spec/loader.py
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

T = TypeVar("T")
Path_ = tuple[Any, ...]

KINDS = [
    "haproxy",
    "nginx-lb",
    "web",
    "php-fpm",
    "redis",
    "mariadb",
    "mysql",
    "prometheus",
    "toxiproxy",
    "custom",
]
# Boundary values for fields (by key name): what a careless or hostile edit writes.
BOUNDARIES: dict[str, list[Any]] = {
    "replicas": [0, 1, 2, 20, 21, True, "3", 3.0, -1],
    "users": [0, 1, 10000, 10001, True, "20"],
    "spawn_rate": [0, 0.5, 10001, "10"],
    "duration": ["0s", 0, "500ms", "1s", "1h", "168h", "169h", "1 0s", "1m30s", "5 sec"],
    "interval": ["0s", "1ms", "10ms", "1h", "2h", 0],
    "timeout": ["0s", "0.5ms", "1ms", "90s"],
    "advert_int": ["0s", "1s", "1500ms", "255s", "256s", "1h", 1, 0],
    "fall": [0, 1, 100, 101, True],
    "rise": [0, 1, 100, 101],
    "path": ["/health", "/", "", "health", "/a b", "/x\n    server evil 1.2.3.4:80", "/%zz", "/$x"],
    "vip": ["auto", "10.213.0.200", "10.213.0.10", "10.213.0.5", "10.213.0.1", "1.2.3.4", "x"],
    "subnet": ["10.213.7.0/24", "10.213.0.0/16", "10.213.7.0/28", "8.8.8.0/24", "10.213.7.9/24"],
    "weight": [0, -1, 1, 1000, 1001],
    "count": [0, 1, 2, 3, 10, 20, 21],
    "percent": [0, 1, 50, 100, 101],
    "at": ["0s", "1s", "39s", "40s", "1h"],
    "for": ["0s", "1s", "1h", "30s"],
    "every": ["0s", "1s", "10s"],
    "repeat": [0, 1, 2, 100, 101],
    "window": ["0s", "1s", "1h"],
    "max_error_ratio": [0, 1, 1.5, -0.1, "0.1"],
    "max_lost": [0, -1, True],
    "quantile": [0, 0.5, 1, 0.999],
    "cookie": [True, False, "yes", 1],
    "redispatch": [True, "no", 0],
    "sessions": ["redis", "files", "memcached"],
    "balance": ["roundrobin", "leastconn", "source", "ip_hash", "random"],
    "locustfile": ["locustfiles/mix.py", "nosuch.py", "/dev/zero", "a,b.py", "x" * 300],
    "url": ["http://127.0.0.1:8080", "http://8.8.8.8", "http://web-1", "http://lb:99999", "ftp://x"],
    "target": ["web", "web-1", "web-9", "prometheus", "vip_holder:lb", "mysql"],
    "process": ["haproxy", "nginx", "php-fpm8.2", "keepalived", "redis-server", "x" * 16],
    "signal": ["SIGKILL", "TERM", "9", "SIGFOO", "0"],
    "promql": ["", " ", "up", 'up{run="$run"}'],
    "config": ["/", "../..", ".", "/etc/passwd", "/dev/zero", "nosuch.cfg", "x" * 300],
    "app": ["builtin", "/", "../..", "/etc", "nosuch", "x" * 300],
    "image": ["debian:bookworm-slim", "debian bookworm", "UPPER:1", "registry:5000/a/b:1"],
    "memory": ["1k", "6m", "512m", "1g", "0"],
    "cpus": [0, 0.001, 0.01, 2],
    "ports": [[0], [1], [65535], [65536]],
    "max_children": [1, 2, 500, 501],
    "start_servers": [1, 5, 600],
    "pm": ["static", "dynamic", "ondemand"],
    "next_upstream": [[], ["off"], ["off", "error"], ["error", "error"], "error"],
    "seed": [0, -1, 2**62],
    "scrape_interval": ["0s", "50ms", "100ms", "5m", "6m"],
    "db_timeout": ["0s", "500ms", "1s", "1500ms"],
    "fail_timeout": ["0s", "500ms", "1s", "2500ms"],
    "between": [[1, 2], [2, 1], [1], 5],
    "name": ["x", "", "a" * 200, "[/]", ":smile:", "kill #2", "bad\nname"],
}


class Chooser(Protocol):
    """Every random choice a mutation makes."""

    def choice(self, seq: Sequence[T]) -> T: ...

    def integer(self, lo: int, hi: int) -> int: ...

    def value(self) -> Any: ...

    def text(self, lo: int, hi: int) -> str: ...


class RandomChooser:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def choice(self, seq: Sequence[T]) -> T:
        return seq[self.rng.randrange(len(seq))]

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def text(self, lo: int, hi: int) -> str:
        n = self.rng.randint(lo, hi)
        alphabet = "abcxyz-_019 :#[]{}'\"\\/.\n\t\x00é😀"
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def value(self) -> Any:
        r = self.rng
        kind = r.randrange(10)
        if kind == 0:
            return None
        if kind == 1:
            return r.choice([True, False])
        if kind == 2:
            return r.randint(-(10**6), 10**6)
        if kind == 3:
            return r.choice([10**20, float("inf"), float("nan"), 0.5, -1.5])
        if kind == 4:
            return self.text(0, 12)
        if kind == 5:
            return r.choice(["", "0", "yes", "~", "1s", "-1s", "2024-01-01", "web", "{", "&a"])
        if kind == 6:
            return [self.value() for _ in range(r.randint(0, 3))]
        if kind == 7:
            return {self.text(1, 6): self.value() for _ in range(r.randint(0, 3))}
        return r.choice(["web", "lb", "mysql", "redis", "web-1", "prometheus", "toxiproxy"])


# ------------------------------------------------------------------ walking and editing the data


def walk(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, path + (i,))


def get(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def set_(data: Any, path: Path_, value: Any) -> None:
    get(data, path[:-1])[path[-1]] = value


def typo(c: Chooser, word: str) -> str:
    i = c.integer(0, len(word))
    ch = c.choice("abcdefghijklmnopqrstuvwxyz_-")
    op = c.choice(["insert", "delete", "replace", "swap"])
    if op == "insert" or len(word) < 2:
        return word[:i] + ch + word[i:]
    i = min(i, len(word) - 2)
    if op == "delete":
        return word[:i] + word[i + 1 :]
    if op == "replace":
        return word[:i] + ch + word[i + 1 :]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _services(data: Any) -> dict[str, Any]:
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        return {}
    return services


def _names(data: Any) -> list[str]:
    names = [str(n) for n in _services(data)]
    return names or ["web"]


def _new_service(c: Chooser, data: Any) -> tuple[str, dict[str, Any]]:
    names = _names(data)
    name = c.choice(
        [f"svc{c.integer(0, 99)}", f"{c.choice(names)}-{c.integer(1, 3)}", "prometheus", "toxiproxy"]
        + names
    )
    kind = c.choice(KINDS)
    svc: dict[str, Any] = {"kind": kind}
    if c.integer(0, 2):
        svc["replicas"] = c.choice([1, 2, 3, 20])
    if kind in ("haproxy", "nginx-lb"):
        svc["backends"] = c.choice(names)
        if c.integer(0, 1):
            svc["keepalived"] = {"vip": c.choice(["auto", "auto", "10.213.0.200"])}
            svc["replicas"] = 2
    if kind in ("web", "php-fpm") and c.integer(0, 1):
        svc["sessions"] = c.choice(["redis", "files"])
    if kind == "custom" or (kind == "mysql" and c.integer(0, 2)):
        svc["image"] = c.choice(["debian:bookworm-slim", "mysql:8", "nginx:1"])
    if c.integer(0, 2) == 0:
        svc["depends_on"] = [c.choice(names) for _ in range(c.integer(1, 2))]
    return name, svc


def mutate(c: Chooser, source: str) -> tuple[str, list[str]]:
    """(YAML text, what was done) for one to three mutations of one shipped topology."""
    data = copy.deepcopy(SOURCES[source])
    done: list[str] = []
    text: str | None = None
    for _ in range(c.integer(1, 3)):
        op = c.choice(OPS)
        done.append(op)
        nodes = list(walk(data))
        if op in ("delete", "rename"):
            keys = [p for p, _ in nodes if p and isinstance(p[-1], str)]
            if keys:
                path = c.choice(keys)
                parent = get(data, path[:-1])
                value = parent.pop(path[-1])
                if op == "rename":
                    parent[typo(c, path[-1])] = value
        elif op == "retype":
            paths = [p for p, _ in nodes if p]
            if paths:
                set_(data, c.choice(paths), c.value())
        elif op == "reference":
            strings = [p for p, v in nodes if isinstance(v, str) and p]
            if strings:
                path = c.choice(strings)
                old = get(data, path)
                i = c.integer(0, len(old))
                set_(data, path, old[:i] + c.text(1, 10) + old[i:])
        elif op == "duplicate":
            lists = [p for p, v in nodes if isinstance(v, list) and v]
            if lists:
                items = get(data, c.choice(lists))
                items.insert(c.integer(0, len(items)), copy.deepcopy(c.choice(items)))
        elif op == "boundary":
            hits = [p for p, _ in nodes if p and isinstance(p[-1], str) and p[-1] in BOUNDARIES]
            if hits:
                path = c.choice(hits)
                set_(data, path, copy.deepcopy(c.choice(BOUNDARIES[path[-1]])))
        elif op == "add-service":
            services = _services(data)
            if isinstance(data, dict) and isinstance(data.get("services"), dict):
                name, svc = _new_service(c, data)
                services[name] = svc
        elif op == "add-depends-on":
            services = _services(data)
            targets = [n for n, s in services.items() if isinstance(s, dict)]
            if targets:
                svc = services[c.choice(targets)]
                deps = svc.get("depends_on")
                if not isinstance(deps, list):
                    deps = svc["depends_on"] = []
                deps.append(c.choice(_names(data) + ["nosuch", "prometheus", "toxiproxy"]))
        elif op == "add-link":
            if isinstance(data, dict):
                links = data.get("links")
                if not isinstance(links, list):
                    links = data["links"] = []
                names = _names(data)
                links.append({"from": c.choice(names), "to": c.choice(names)})
        elif op == "set-key":
            dicts = [p for p, v in nodes if isinstance(v, dict)]
            if dicts:
                parent = get(data, c.choice(dicts))
                key = c.choice(sorted(BOUNDARIES))
                parent[key] = copy.deepcopy(c.choice(BOUNDARIES[key]))
        else:  # text-level damage to the file as written
            text = TEXTS[source]
            lines = text.splitlines(keepends=True)
            i = c.integer(0, len(lines) - 1)
            if op == "dup-line":
                lines.insert(i, lines[i])
            elif op == "drop-line":
                del lines[i]
            else:
                j = c.integer(0, len(lines[i]))
                lines[i] = lines[i][:j] + c.choice(list("\t:-[]{}&*!|>'\"#%@` ,?")) + lines[i][j:]
            return "".join(lines), done
    return (text if text is not None else dump(data)), done


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=DUMPER, sort_keys=False, allow_unicode=False)


STRUCTURAL = [
    "delete",
    "rename",
    "retype",
    "reference",
    "duplicate",
    "boundary",
    "add-service",
    "add-depends-on",
    "add-link",
    "set-key",
]
TEXTUAL = ["dup-line", "drop-line", "insert-char"]
OPS = STRUCTURAL + TEXTUAL


# ------------------------------------------------------------------ running one case


class Workdir:
    """A copy of topologies/ and chaos/ in a temporary directory: a mutant of
    `examples/x.yaml` is written as `<tmp>/topologies/examples/<name>.yaml`, so the paths it
    names (conf/..., checks/..., ../chaos/...) resolve as they do for the original."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(TOPOLOGIES, root / "topologies", dirs_exist_ok=True)
        if (ROOT / "chaos").is_dir():
            shutil.copytree(ROOT / "chaos", root / "chaos", dirs_exist_ok=True)

    def path(self, source: str, name: str) -> Path:
        return self.root / "topologies" / Path(source).parent / name


def check_problem(problem: str, path: Path, n_lines: int) -> str | None:
    """Why a problem line breaks the format, or None."""
    if "\n" in problem or "\r" in problem:
        return "more than one line"
    m = PROBLEM.match(problem)
    if not m:
        return "not `file:line: field: problem`"
    if m["file"] != str(path):  # a problem of an experiment the topology names: in its file
        other = Path(m["file"])
        if not other.is_file():
            return f"names {other}, which is not a file"
        n_lines = len(other.read_text().splitlines())
    if not 1 <= int(m["line"]) <= max(1, n_lines):
        return f"line {m['line']} outside the file's {n_lines} lines"
    if not FIX.search(m["msg"]):
        return "no fix part"
    if m["msg"].endswith(f"({FALLBACK_FIX})"):
        return "only the generic fix part"
    if "Traceback" in problem or "pydantic" in problem.lower():
        return "internals leak into the message"
    return None


def plan_subnet(topo: Any) -> str:
    return topo.network.subnet or "10.213.9.0/24"


def run_case(path: Path, text: str, validator: Any = None) -> tuple[str, list[str], Any]:
    """('accepted' | 'rejected', findings, Topology or problems) for one mutant file."""
    from harness.errors import SpecError
    from harness.plan.build import make_plan
    from harness.plan.check import load_topology

    path.write_text(text)
    n_lines = len(text.splitlines())
    findings: list[str] = []
    try:
        topo = load_topology(path)
    except SpecError as exc:
        if not exc.problems:
            findings.append("format: a SpecError with no problem")
        for problem in exc.problems:
            why = check_problem(problem, path, n_lines)
            if why:
                findings.append(f"format: {why}: {problem[:300]!r}")
        return "rejected", findings, exc.problems
    except Exception as exc:  # noqa: BLE001 - what we are looking for
        tb = traceback.format_exception(exc)
        findings.append(f"crash: {type(exc).__name__}: {exc}"[:300] + f" at {tb[-2].strip()[:200]}")
        return "crash", findings, None
    try:
        plan = make_plan(topo, "fuzz", plan_subnet(topo), [], base_dir=path.parent)
        ips = [c.ip for c in plan.containers]
        if len(set(ips)) != len(ips) or set(plan.vips.values()) & set(ips):
            findings.append("plan: two containers, or a container and a VIP, share an address")
        net = ipaddress.IPv4Network(plan.subnet)
        if not all(ipaddress.IPv4Address(ip) in net for ip in ips):
            findings.append("plan: an address outside the subnet")
    except Exception as exc:  # noqa: BLE001
        findings.append(f"plan: {type(exc).__name__}: {exc}"[:300])
    if validator is not None:
        try:
            data = yaml.safe_load(text)
            errors = [e.message for e in validator.iter_errors(data)]
        except Exception as exc:  # noqa: BLE001
            errors = [f"{type(exc).__name__}: {exc}"]
        if errors:
            findings.append(f"schema: {errors[0][:200]}")
    return "accepted", findings, topo


def run_cli(path: Path) -> list[str]:
    """`harness validate` on the file: exit 0 or 3, and every line of stderr a problem."""
    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    findings = []
    if code not in (0, 3):
        findings.append(f"cli: exit {code}: {err.getvalue()[:300]!r}")
    n_lines = len(path.read_text().splitlines())
    for line in err.getvalue().splitlines():
        why = check_problem(line, path, n_lines)
        if why:
            findings.append(f"cli: {why}: {line[:300]!r}")
    return findings


def schema_validator() -> Any:
    try:
        import jsonschema
    except ImportError:
        return None
    from harness.spec.schema import json_schema

    return jsonschema.Draft202012Validator(json_schema())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--cli-every", type=int, default=10, help="also run the CLI on every Nth case")
    p.add_argument("--show", type=int, default=5, help="examples to print per finding kind")
    args = p.parse_args(argv)

    rng = random.Random(args.seed)
    chooser = RandomChooser(rng)
    validator = schema_validator()
    outcomes: collections.Counter[str] = collections.Counter()
    by_op: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    findings: dict[str, list[str]] = collections.defaultdict(list)
    messages: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-validate-") as tmp:
        work = Workdir(Path(tmp))
        for case in range(args.cases):
            source = chooser.choice(sorted(SOURCES))
            text, ops = mutate(chooser, source)
            path = work.path(source, f"mutant-{case % 50}.yaml")
            outcome, found, result = run_case(path, text, validator)
            if args.cli_every and case % args.cli_every == 0:
                found += run_cli(path)
            outcomes[outcome] += 1
            for op in ops:
                by_op[op][outcome] += 1
            if outcome == "rejected":
                for problem in result:
                    m = PROBLEM.match(problem)
                    if m:
                        messages[re.sub(r"'[^']*'|\d+", "_", m["msg"])[:80]] += 1
            for f in found:
                kind = f.split(":", 1)[0]
                findings[kind].append(f"case {case} ({' + '.join(ops)} in {source}): {f}")
    elapsed = time.monotonic() - started
    total = sum(len(v) for v in findings.values())
    print(f"fuzz_validate: {args.cases} cases (seed {args.seed}) in {elapsed:.0f}s")
    print(
        f"  accepted {outcomes['accepted']}, rejected {outcomes['rejected']}, "
        f"crashed {outcomes['crash']}; CLI run on every {args.cli_every}th case"
    )
    print(f"  sources: {len(SOURCES)} shipped topologies; distinct problem messages: {len(messages)}")
    print("  by mutation: " + ", ".join(
        f"{op} {sum(c.values())} ({c['accepted']} accepted)" for op, c in sorted(by_op.items())
    ))
    for kind in ("crash", "plan", "schema", "format", "cli"):
        print(f"  {kind:7s} findings: {len(findings.get(kind, []))}")
        for example in findings.get(kind, [])[: args.show]:
            print(f"    {example}")
    print("RESULT: " + ("no findings" if total == 0 else f"{total} findings"))
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
