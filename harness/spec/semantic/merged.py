"""Checks of the topology as it will run, once its experiments are merged in and picked."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from harness.spec.liveness import plan
from harness.spec.models import Topology
from harness.spec.semantic.assertions import check_tolerances
from harness.spec.semantic.common import Loc


def check_merged(
    topo: Topology, titles: Iterable[str] = (), require_assertions: bool = True
) -> Iterator[tuple[Loc, str]]:
    """Checks of the topology as it will run, after its experiments are merged in and picked:
    at least one assertion, no step hitting a container an earlier step removed, injection
    names that tell steps apart, and `compare.tolerance` keys (`titles`: every assertion name
    the tolerances may refer to, also of experiments not picked)."""
    if require_assertions and not topo.assertions:
        fix = (
            "add one under assertions:, or pick an experiment that brings some"
            if topo.experiments
            else "add at least one, e.g. - error_budget: {max_error_ratio: 0.01}"
        )
        yield (
            ("assertions",),
            f"a topology with no assertions can never fail, so it gates nothing ({fix})",
        )
    by_key = {_key(s.name): s.name for s in topo.chaos}
    for step in topo.chaos:
        for _, name in step.injections()[1:]:
            other = by_key.get(_key(name))
            if other is not None:
                j = next(j for j, s in enumerate(topo.chaos) if s.name == other)
                yield (
                    ("chaos", j, "name"),
                    f"'{other}' is also what injection {name[len(step.name) :].strip()} of step "
                    f"'{step.name}' is called, so the two cannot be told apart (rename one)",
                )
    for planned in plan(topo):
        if planned.problem is not None:
            where, message = planned.problem
            inj = planned.injection
            prefix = f"injection #{inj.k}: " if inj.k > 1 else ""
            yield ("chaos", inj.index) + where, prefix + message
    yield from _check_overlaps(topo)
    if topo.compare is not None:
        yield from check_tolerances(topo, list(titles) or [a.title for a in topo.assertions])


def _key(name: str) -> str:
    """`kill #2` and `kill#2` are the same injection to an assertion."""
    return re.sub(r"\s*#(\d+)$", r"#\1", name.strip())


def _spans(topo: Topology) -> list[tuple[Any, float, float, list[str], str | None]]:
    """(injection, start, end, containers hit, link) of every injection the schedule fires."""
    out = []
    for planned in plan(topo):
        inj = planned.injection
        step = inj.step
        # A window holds its target until its rollback; a step without one is an instant here
        # (issue 9: pause, restart, process_kill and kill of one node in a row are valid).
        end = inj.offset + step.for_ if step.for_ is not None else inj.offset
        link = getattr(step.fault.params, "link", None)
        out.append((inj, inj.offset, end, list(planned.hits or []), link))
    return out


def _check_overlaps(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """Two faults on one container (or two toxics of a kind, or a cut and a toxic, on one link)
    at overlapping times: the first one's rollback would undo or break the second."""
    spans = _spans(topo)
    for j, (b, b_start, b_end, b_hits, b_link) in enumerate(spans):
        for a, a_start, a_end, a_hits, a_link in spans[:j]:
            if a.index == b.index or b_start > a_end or a_start > b_end:
                continue
            common = sorted(set(a_hits) & set(b_hits))
            kinds = (a.step.fault.kind, b.step.fault.kind)
            same_link = (
                a_link is not None
                and a_link == b_link
                and (kinds[0] == kinds[1] or "down" in kinds)
            )
            if not common and not same_link:
                continue
            what = f"container {common[0]}" if common else f"link {a_link}"
            window = f"from {a_start:g}s to {a_end:g}s" if a_end > a_start else f"at {a_start:g}s"
            yield (
                ("chaos", b.index, "at"),
                f"'{b.name}' hits {what} while step '{a.name}' holds it ({kinds[0]} {window}): "
                "the first rollback would undo or break the other fault (move one outside the "
                "other's window, or target another instance)",
            )
            break
