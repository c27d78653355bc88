"""YAML → `Topology`, with every problem reported as `file:line: field: problem (fix)`.

The YAML is composed (not just loaded) so that each key path keeps the line it came from;
pydantic error locations and our own cross-reference checks are mapped back to those lines.
Whatever the input, the result is a `Topology` or a `SpecError` whose problems are single lines
with a line number inside the file: never a traceback.

Reading the YAML is `yamlfile`, pydantic's errors in words `problems`, the one-line format
`render`; this module runs the checks in order and merges experiments in.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import SpecError
from harness.spec.files import FileProblem, probe
from harness.spec.models import Experiment, Topology
from harness.spec.problems import validation_problems
from harness.spec.render import Loc, line_for, one_line, render
from harness.spec.semantic import (
    check_merged,
    check_topology,
    resolve_fault_ref,
    resolve_locustfile,
    warn_topology,
)
from harness.spec.yamlfile import START_FROM, read_yaml

__all__ = [
    "canonical_references",
    "line_for",
    "load_topology",
    "read_yaml",
    "validation_problems",
]

# validation context: the data comes from a file, keys as the schema spells them
FILE = {"file": True}


def load_topology(
    path: str | Path,
    experiments: list[str] | None = None,
    *,
    require_assertions: bool = True,
    warnings: list[str] | None = None,
    allow_external_target: bool = False,
) -> Topology:
    """Read, validate and cross-check a topology file and the experiments it references; raise
    one `SpecError` listing every problem. `experiments` picks experiments by name (default: all
    listed); their steps and assertions join the topology's own. The topology as it will run
    (merged and picked) is checked last: it needs an assertion, and no step may hit a container
    an earlier step removed. The run's plan is not built here (the spec sits below the plan):
    `harness.plan.check.load_topology` adds that check, and every entry point calls it.
    References to a repeated step's later injections (`NAME#2`) come back as the schedule
    names them (`NAME #2`), and `load.locustfile` as the absolute path it was found at. `require_assertions=False` is for
    `harness up`, which judges nothing; `warnings` (if given) receives the warning lines, each
    `file:line: field: warning: problem (fix)`; `allow_external_target` lets load.url leave the
    run's network (harness run --allow-external-target)."""
    path = Path(path)
    topo, lines, found = _load_one(path, allow_external_target)
    if not topo.experiments:
        if experiments:
            raise SpecError(
                render(str(path), found, lines)
                + [
                    one_line(
                        f"{path}:1: experiments: none declared, cannot pick {', '.join(experiments)} "
                        "(add experiments: [chaos/<file>.yaml])"
                    )
                ]
            )
        merged = check_merged(topo, require_assertions=require_assertions)
        problems = render(str(path), [*found, *merged], lines)
        if problems:
            raise SpecError(problems)
        if warnings is not None:
            found_warnings = list(warn_topology(topo, path.parent))
            warnings += render(str(path), found_warnings, lines, "warning: ")
        return _resolved(path, canonical_references(topo))
    if found:
        raise SpecError(render(str(path), found, lines))
    return _resolved(
        path, _with_experiments(path, topo, lines, experiments, require_assertions, warnings)
    )


def _resolved(path: Path, topo: Topology) -> Topology:
    """`load.locustfile` as the absolute path validation found it at, so the run does not
    depend on the working directory."""
    found = resolve_locustfile(path.parent, topo.load.locustfile)
    if found is None:  # checked already; keep the spec as written rather than fail here
        return topo
    load = topo.load.model_copy(update={"locustfile": str(found)})
    return topo.model_copy(update={"load": load})


# Where an item of the merged topology came from: (file, its line map, its index in that file).
_Source = tuple[str, dict[Loc, int], int]


def _with_experiments(
    path: Path,
    topo: Topology,
    lines: dict[Loc, int],
    pick: list[str] | None,
    require_assertions: bool = True,
    warnings: list[str] | None = None,
) -> Topology:
    problems: list[str] = []
    loaded: list[tuple[Experiment, str, dict[Loc, int]]] = []
    for i, rel in enumerate(topo.experiments):
        file = path.parent / rel
        try:
            kind = probe(file)
        except FileProblem as exc:
            problems.append(
                one_line(
                    f"{path}:{line_for(lines, ('experiments', i))}: experiments[{i}]: {exc.message}"
                )
            )
            continue
        if kind != "file":
            what = f"no file {file}" if kind == "missing" else f"{file} is {kind}, not a file"
            problems.append(
                one_line(
                    f"{path}:{line_for(lines, ('experiments', i))}: experiments[{i}]: {what} "
                    "(paths are relative to the topology file)"
                )
            )
            continue
        try:
            data, exp_lines = read_yaml(file)
            exp = Experiment.model_validate(data, context=FILE)
        except SpecError as exc:
            problems += exc.problems
            continue
        except ValidationError as exc:
            problems += validation_problems(str(file), exc, data, exp_lines)
            continue
        view = topo.model_copy(update={"chaos": exp.chaos, "assertions": exp.assertions})
        found = [
            (loc, msg)
            for loc, msg in check_topology(view, path.parent)
            if loc[:1] in (("chaos",), ("assertions",))
        ]
        problems += render(str(file), found, exp_lines)
        loaded.append((exp, str(file), exp_lines))
    if problems:
        raise SpecError(problems)
    names = [e.name for e, _, _ in loaded]
    for name in pick or []:
        if name not in names:
            raise SpecError(
                [
                    f"{path}:{line_for(lines, ('experiments',))}: experiments: no experiment named "
                    f"'{name}' (known: {', '.join(names)})"
                ]
            )
    chosen = [x for x in loaded if pick is None or x[0].name in pick]
    chaos = list(topo.chaos) + [s for e, _, _ in chosen for s in e.chaos]
    assertions = list(topo.assertions) + [a for e, _, _ in chosen for a in e.assertions]
    seen: set[str] = set()
    for step in chaos:
        if step.name in seen:
            raise SpecError(
                [
                    f"{path}:{line_for(lines, ('experiments',))}: experiments: two chaos steps are named "
                    f"'{step.name}' (rename one)"
                ]
            )
        seen.add(step.name)
    titles = [a.title for a in assertions]
    dup = next((t for t in titles if titles.count(t) > 1), None)
    if dup is not None:
        raise SpecError(
            [
                f"{path}:{line_for(lines, ('experiments',))}: experiments: two assertions are named "
                f"'{dup}' (give one a name:)"
            ]
        )
    merged = topo.model_copy(update={"chaos": chaos, "assertions": assertions})
    own = str(path)
    sources: dict[str, list[_Source]] = {
        "chaos": [(own, lines, i) for i in range(len(topo.chaos))]
        + [(f, ls, i) for e, f, ls in chosen for i in range(len(e.chaos))],
        "assertions": [(own, lines, i) for i in range(len(topo.assertions))]
        + [(f, ls, i) for e, f, ls in chosen for i in range(len(e.assertions))],
    }
    every_title = [a.title for a in topo.assertions] + [
        a.title for e, _, _ in loaded for a in e.assertions
    ]
    late = check_merged(merged, every_title, require_assertions=require_assertions)
    problems = _render_merged(own, lines, sources, late)
    if problems:
        raise SpecError(problems)
    if warnings is not None:
        found = list(warn_topology(merged, path.parent))
        warnings += _render_merged(own, lines, sources, found, "warning: ")
    return canonical_references(merged)


def _render_merged(
    own: str,
    lines: dict[Loc, int],
    sources: dict[str, list[_Source]],
    found: Iterable[tuple[Loc, str]],
    prefix: str = "",
) -> list[str]:
    """Problems of the merged topology, each in the file (and at the line) its item came from."""
    by_file: dict[str, tuple[dict[Loc, int], list[tuple[Loc, str]]]] = {}
    for loc, msg in found:
        file, file_lines = own, lines
        if len(loc) > 1 and loc[0] in sources and isinstance(loc[1], int):
            file, file_lines, index = sources[loc[0]][loc[1]]
            loc = (loc[0], index, *loc[2:])
        by_file.setdefault(file, (file_lines, []))[1].append((loc, msg))
    out: list[str] = []
    for file, (file_lines, problems) in by_file.items():
        out += render(file, problems, file_lines, prefix)
    return out


def canonical_references(topo: Topology) -> Topology:
    """Fault references in assertions (`during: fault:NAME#2`, `fault: NAME #2`) rewritten to the
    injection names the schedule journals (`NAME #2`; `#1` is the step's own name)."""
    steps = {s.name: s for s in topo.chaos}
    assertions = []
    for a in topo.assertions:
        update: dict[str, Any] = {}
        if a.during.startswith("fault:"):
            name, _ = resolve_fault_ref(a.during[6:], steps)
            if name is not None:
                update["during"] = f"fault:{name}"
        fault = getattr(a.params, "fault", None)
        if fault is not None:
            name, _ = resolve_fault_ref(fault, steps)
            if name is not None and name != fault:
                update[a.kind] = a.params.model_copy(update={"fault": name})
        assertions.append(a.model_copy(update=update) if update else a)
    return topo.model_copy(update={"assertions": assertions})


def _load_one(
    path: Path, allow_external_target: bool = False
) -> tuple[Topology, dict[Loc, int], list[tuple[Loc, str]]]:
    """The file as a `Topology` (or a SpecError), its line map, and its cross-reference problems."""
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        got = "a list" if isinstance(data, list) else f"'{one_line(str(data))[:40]}'"
        raise SpecError(
            [
                one_line(
                    f"{path}:1: (top-level): a topology must be a mapping with 'name' and "
                    f"'services', got {got} ({START_FROM})"
                )
            ]
        )
    try:
        topo = Topology.model_validate(data, context=FILE)
    except ValidationError as exc:
        raise SpecError(validation_problems(str(path), exc, data, lines)) from None
    return topo, lines, list(check_topology(topo, path.parent, allow_external_target))
