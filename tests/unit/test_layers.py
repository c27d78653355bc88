"""Imports run one way. Every module of the package sits on a floor, in the order a run flows
(spec → plan → runtime → load/chaos/watch → observe → verdict → report, with the entry points
on top); a module may import from its own floor or below, never from a later one, and no two
modules import each other, however indirectly. Imports are read from the source (ast), at
module level or inside functions alike: a lazy import is still a dependency.

A new module goes into LAYERS; an import that has to run upwards is a design question, not an
entry in KNOWN_EXCEPTIONS, which only lists what harness/spec, harness/plan and harness/kinds
still do (those packages are being reworked in another issue)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "harness"

# Module (or package prefix) -> floor. The longest matching prefix wins.
LAYERS: dict[str, int] = {
    # 0, the ground floor: what every phase may use.
    "harness": 0,  # the package itself: lazy public API (importlib strings), __version__
    "harness.errors": 0,
    "harness.journal": 0,  # the run's record: schedule, runner, gc and report all write or read it
    "harness.roles": 0,  # each kind's role and the facts validation needs (stdlib only)
    "harness.observe.metrics": 0,  # the metric catalogue: names only, stdlib only
    "harness.toxiproxy": 0,  # the self-contained proxy and its client
    # 1..8: the flow of a run.
    "harness.spec": 1,
    "harness.plan": 2,
    "harness.kinds": 2,  # each kind turns a service into container plans, beside plan/
    "harness.runtime": 3,
    "harness.export": 3,  # the plan written as Compose/Swarm/Kubernetes files (image tags from runtime)
    "harness.hosts": 3,  # testinfra hosts for a run's containers
    "harness.load": 4,
    "harness.chaos": 4,
    "harness.remote": 4,  # runtime: hosts: faults on existing machines over SSH
    "harness.watch": 4,
    "harness.observe": 5,
    "harness.verdict": 6,
    "harness.report": 7,
    "harness.grafana": 7,  # annotations and dashboards: a report that lives in Grafana
    "harness.runner": 8,
    "harness.run": 8,  # a run's phases, events and subscribers (harness.runner re-exports it)
    "harness.cli": 8,
    "harness.doctor": 8,
    "harness.pytest_plugin": 8,
}

# (importer, imported): edges of harness/spec, harness/plan and harness/kinds that cannot be fixed
# from outside those packages yet (both checks skip them; one that disappears needs no edit here).
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()
EXEMPT_PACKAGES = ("harness.spec", "harness.plan", "harness.kinds")


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules `name` imports (absolute and relative, anywhere in the file)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from a import b`: the module a.b if there is one, else a itself
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a function-less path
                target = target.rpartition(".")[0]
            if target.startswith("harness") and target != name:
                found.add(target)
    return found


def floor(name: str) -> int:
    matches = [p for p in LAYERS if name == p or name.startswith(p + ".")]
    assert matches, f"{name} is on no floor: add it to LAYERS"
    return LAYERS[max(matches, key=len)]


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def test_every_module_is_on_a_floor() -> None:
    unplaced = []
    for name in modules():
        try:
            floor(name)
        except AssertionError:
            unplaced.append(name)
    assert not unplaced, f"add to LAYERS: {unplaced}"


def test_no_module_imports_from_a_later_floor() -> None:
    upward = sorted(
        f"{a} (floor {floor(a)}) imports {b} (floor {floor(b)})"
        for a, deps in graph().items()
        for b in deps
        if floor(b) > floor(a) and (a, b) not in KNOWN_EXCEPTIONS
    )
    assert not upward, "imports running back up:\n" + "\n".join(upward)


# Beside each other on one floor, run side by side while the load runs: none imports another
# (chaos asks the runtime who holds a VIP, not the VIP watcher).
SIBLINGS = ("harness.load", "harness.chaos", "harness.watch")


def test_load_chaos_and_watch_do_not_import_each_other() -> None:
    def side(name: str) -> str | None:
        return next((p for p in SIBLINGS if name == p or name.startswith(p + ".")), None)

    crossing = sorted(
        f"{a} imports {b}"
        for a, deps in graph().items()
        for b in deps
        if side(a) and side(b) and side(a) != side(b)
    )
    assert not crossing, "\n".join(crossing)


def test_known_exceptions_are_only_spec_plan_and_kinds() -> None:
    assert all(a.startswith(EXEMPT_PACKAGES) for a, _ in KNOWN_EXCEPTIONS)


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    g = {a: {b for b in deps if (a, b) not in KNOWN_EXCEPTIONS} for a, deps in graph().items()}
    assert not cycles(g), f"import cycles: {cycles(g)}"


def test_the_checker_sees_what_it_must() -> None:
    """The checker itself: relative imports, `from package import module`, lazy imports, and
    a cycle or a back edge are found."""
    g = graph()
    assert "harness.toxiproxy.server" in g["harness.toxiproxy"]  # `from .server import …`
    assert "harness.chaos" in g["harness.chaos.schedule"]  # `from harness import chaos`
    assert "harness.runner" in g["harness.cli.run"]  # inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert (
        floor("harness.observe.metrics")
        < floor("harness.load.plugin")
        < floor("harness.observe.prom")
    )


# Service kinds are named in harness/kinds/ (their modules), harness/roles.py (their facts) and
# harness/spec/models/ (their model classes) only: elsewhere a kind is found by its role
# (`roles.kinds_of(Role.LOAD_BALANCER)`) or its descriptor (`kinds.descriptor(kind).log`), so
# a new kind of a known role needs no edit there. Caught: a kind's name compared with a `.kind`
# or a `*kind*` variable, listed in a `*KINDS*` table, or passed as `kind=`.
KIND_HOMES = ("harness.kinds", "harness.roles", "harness.spec.models", "harness.toxiproxy")
# (module, kind) still named by work in progress elsewhere; move each into the kind's
# descriptor or ask by role (see harness/kinds/__init__.py).
KNOWN_KIND_NAMES: set[tuple[str, str]] = set()


def kind_names_in(path: Path, kinds: set[str]) -> list[tuple[int, str]]:
    def mentions_kind(node: ast.AST) -> bool:
        return any(
            (isinstance(n, ast.Attribute) and n.attr.endswith("kind"))
            or (isinstance(n, ast.Name) and "kind" in n.id.lower())
            for n in ast.walk(node)
        )

    def names(node: ast.AST | None) -> list[str]:
        if node is None:
            return []
        return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and n.value in kinds]

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        hits: list[str] = []
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(mentions_kind(s) for s in sides):
                hits = [k for s in sides for k in names(s)]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and "KINDS" in t.id for t in targets):
                hits = names(node.value)
        elif isinstance(node, ast.keyword) and node.arg == "kind":
            hits = names(node.value)
        found += [(getattr(node, "lineno", 0), k) for k in hits]
    return found


def test_no_kind_is_named_outside_its_homes() -> None:
    from harness.roles import FACTS

    named = sorted(
        f"{path}:{line}: '{kind}' (ask harness.roles by role, or the kind's DESCRIPTOR)"
        for name, path in modules().items()
        if not name.startswith(KIND_HOMES)
        for line, kind in kind_names_in(path, set(FACTS))
        if (name, kind) not in KNOWN_KIND_NAMES
    )
    assert not named, "kind names outside harness/kinds and harness/roles.py:\n" + "\n".join(named)


def test_the_kind_name_check_sees_what_it_must(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        'LB_KINDS = ("haproxy",)\n'
        'a = [s for s in x if s.kind == "mariadb"]\n'
        'b = backend_kind not in ("web", "custom")\n'
        'c = Plan(kind="redis")\n'
        'd = sessions == "redis"\n'  # a sessions value, not a kind
    )
    found = kind_names_in(src, {"haproxy", "mariadb", "web", "custom", "redis"})
    assert sorted(found) == [
        (1, "haproxy"),
        (2, "mariadb"),
        (3, "custom"),
        (3, "web"),
        (4, "redis"),
    ]
