"""Validation's last check, on the plan's floor: the run's plan is built once from a topology
the spec accepted, so user templates are rendered (a syntax error or a name that does not exist
is found here, at its line) and whatever else the plan would trip over is reported before
anything starts, in the spec's one-line format.

`load_topology` is what every entry point validates with (harness validate, a run's validate
phase, export, hosts): the spec's own `load_topology`, then `check_plan`. Nothing has a side
effect before it returns, so no `SpecError` comes after the network exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from harness.errors import SpecError
from harness.kinds.base import UserFileError
from harness.plan.build import make_plan
from harness.spec import loader
from harness.spec.addresses import EXAMPLE_SUBNET, AddressError
from harness.spec.models import Topology
from harness.spec.render import Loc, render
from harness.spec.yamlfile import read_yaml


def check_plan(topo: Topology, base_dir: Path = Path(".")) -> Iterator[tuple[Loc, str]]:
    """Build the run's plan from a topology that passed every other check: user templates are
    rendered (syntax errors and names that do not exist are found here, at their line), and
    whatever else the plan would trip over is reported rather than left for the run."""
    subnet = topo.network.subnet or EXAMPLE_SUBNET
    secrets = {"db_password": "x" * 24, "redis_password": "x" * 24}
    try:
        make_plan(topo, "validate", subnet, [], secrets=secrets, base_dir=base_dir)
    except UserFileError as exc:
        loc: Loc = ("services", exc.service, "config")
        if exc.dest is not None and isinstance(topo.services[exc.service].config, dict):
            loc += (exc.dest,)
        yield loc, exc.message
    except AddressError as exc:
        yield ("network",), str(exc)
    except RecursionError:
        yield ("services",), "the topology is too deeply interlinked to plan (simplify depends_on)"
    except Exception as exc:  # noqa: BLE001 - a bug in the harness: say so, at the top
        text = f"{type(exc).__name__}: {exc}"
        yield (
            ("services",),
            f"the run's plan cannot be built from this topology: {text[:300]} "
            "(this is a harness bug: please report it with this file)",
        )


def load_topology(
    path: str | Path,
    experiments: list[str] | None = None,
    *,
    require_assertions: bool = True,
    warnings: list[str] | None = None,
    allow_external_target: bool = False,
) -> Topology:
    """`harness.spec.loader.load_topology` (read, validate, cross-check, merge the experiments;
    same arguments), then the run's plan built once: one `SpecError` with every problem, each
    `file:line: field: problem (fix)`. `warnings` receives the warning lines only when the
    topology is valid, plan included."""
    path = Path(path)
    found: list[str] = []
    topo = loader.load_topology(
        path,
        experiments,
        require_assertions=require_assertions,
        warnings=found,
        allow_external_target=allow_external_target,
    )
    problems = list(check_plan(topo, path.parent))
    if problems:
        _, lines = read_yaml(path)  # the plan's problems are in the topology file's services
        raise SpecError(render(str(path), problems, lines))
    if warnings is not None:
        warnings += found
    return topo
