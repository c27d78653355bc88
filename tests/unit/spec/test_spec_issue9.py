"""Issue 9, "a gate that cannot pass a broken system": topologies that could never fail, faults
that outlive the load, steps that hit a container an earlier step removed, `window:` for
instantaneous faults, addressable injections of repeated steps (`NAME#2`) and the `compare:`
regression gate. Every problem is one line, `file:line: field: problem (fix)`, asserted whole.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from harness.chaos.base import FaultContext
from harness.chaos.targets import live_instances, resolve
from harness.errors import InfrastructureError, SpecError
from harness.plan.build import make_plan
from harness.spec.liveness import plan
from harness.spec.loader import load_topology
from harness.spec.models import (
    ChaosStep,
    Compare,
    EjectionTime,
    TargetSpec,
    Topology,
    parse_tolerance,
)
from harness.spec.schema import json_schema
from tests.unit.spec.test_spec_errors import BASE, edit

ROOT = Path(__file__).resolve().parents[3]
CHAOS = "  - {name: kill web-1, at: 10s, fault: {kill: web-1}}"  # line 22 of BASE
ASSERTIONS = "  - session_continuity: {max_lost: 0}\n  - error_budget: {max_error_ratio: 0.01}\n"
ASSERT_2 = "  - error_budget: {max_error_ratio: 0.01}"  # line 25 of BASE


def problems(tmp_path: Path, text: str, name: str = "topology.yaml", **kw: Any) -> list[str]:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_topology(path, **kw)
    return info.value.problems


def valid(tmp_path: Path, text: str, name: str = "topology.yaml", **kw: Any) -> Topology:
    path = tmp_path / name
    path.write_text(text)
    return load_topology(path, **kw)


def steps(*lines: str) -> str:
    """BASE with its one chaos step replaced by these."""
    return edit(CHAOS, "\n".join(f"  - {line}" for line in lines))


# ---------------------------------------------------------------- 1. at least one assertion

NO_ASSERTIONS = (
    "a topology with no assertions can never fail, so it gates nothing "
    "(add at least one, e.g. - error_budget: {max_error_ratio: 0.01})"
)


def test_a_topology_without_assertions_is_invalid_at_the_top_level(tmp_path: Path) -> None:
    text = edit("assertions:\n" + ASSERTIONS, "")
    assert problems(tmp_path, text) == [f"{tmp_path}/topology.yaml:1: assertions: {NO_ASSERTIONS}"]


def test_an_empty_assertions_list_is_invalid_at_its_line(tmp_path: Path) -> None:
    text = edit("assertions:\n" + ASSERTIONS, "assertions: []\n")
    assert problems(tmp_path, text) == [f"{tmp_path}/topology.yaml:23: assertions: {NO_ASSERTIONS}"]


def test_no_assertions_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    text = edit("assertions:\n" + ASSERTIONS, "").replace("backends: web", "backends: wbe")
    assert [p.split(": ")[1] for p in problems(tmp_path, text)] == [
        "assertions",
        "services.lb.backends",
    ]


def test_harness_up_needs_no_assertions(tmp_path: Path) -> None:
    topo = valid(tmp_path, edit("assertions:\n" + ASSERTIONS, ""), require_assertions=False)
    assert topo.assertions == []


EXPERIMENT = """\
version: 1
name: {name}
chaos:
{chaos}
assertions:
{assertions}
"""


def experiment(tmp_path: Path, name: str, chaos: list[str], assertions: list[str]) -> str:
    (tmp_path / "chaos").mkdir(exist_ok=True)
    (tmp_path / "chaos" / f"{name}.yaml").write_text(
        EXPERIMENT.format(
            name=name,
            chaos="\n".join(f"  - {c}" for c in chaos),
            assertions="\n".join(f"  - {a}" for a in assertions) or "  []",
        )
    )
    return f"chaos/{name}.yaml"


def with_experiments(*files: str, assertions: bool = False) -> str:
    text = edit(CHAOS + "\n", "[]\n").replace("chaos:\n[]", "chaos: []")
    if not assertions:
        text = text.replace("assertions:\n" + ASSERTIONS, "")
    return text + "experiments: [" + ", ".join(files) + "]\n"


def test_assertions_brought_by_experiments_count_after_picking(tmp_path: Path) -> None:
    quiet = experiment(tmp_path, "quiet", ["{name: q, at: 5s, fault: {pause: web-3}}"], [])
    judged = experiment(
        tmp_path,
        "judged",
        ["{name: j, at: 5s, for: 2s, fault: {pause: web-2}}"],
        ["{name: no errors, error_budget: {max_error_ratio: 0.01}}"],
    )
    text = with_experiments(quiet, judged)
    assert [a.title for a in valid(tmp_path, text).assertions] == ["no errors"]
    assert [a.title for a in valid(tmp_path, text, experiments=["judged"]).assertions] == [
        "no errors"
    ]
    assert problems(tmp_path, text, experiments=["quiet"]) == [
        f"{tmp_path}/topology.yaml:1: assertions: a topology with no assertions can never fail, "
        "so it gates nothing (add one under assertions:, or pick an experiment that brings some)"
    ]
    assert valid(tmp_path, with_experiments(quiet, assertions=True)).assertions


def test_the_shipped_experiments_topology_has_assertions_only_from_its_experiments() -> None:
    topo = load_topology(ROOT / "topologies/experiments.yaml")
    assert topo.assertions and len(topo.chaos) == 4


# ---------------------------------------------------------------- 2. faults that outlive the load

OUTLIVES = [
    (
        "{name: slow, at: 20s, for: 14s, fault: {pause: web-1}}",
        "chaos[0].for: the fault ends at 34s, after the load ends at 30s: the fault would be "
        "judged against no traffic (shorten for: or lengthen load.duration)",
    ),
    (
        "{name: slow, at: 20s, for: 10s, fault: {pause: web-1}}",
        "chaos[0].for: the fault ends at 30s, as the load ends at 30s: the fault would be "
        "judged against no traffic (shorten for: or lengthen load.duration)",
    ),
    (  # every defaults to for + 5s: injections at 10s, 19s and 28s, the last ends at 32s
        "{name: slow, at: 10s, for: 4s, repeat: 3, fault: {pause: web-1}}",
        "chaos[0].for: its last injection (#3) ends at 32s, after the load ends at 30s: the fault "
        "would be judged against no traffic (shorten for:, every: or repeat:, or lengthen "
        "load.duration)",
    ),
    (
        "{name: k, at: 10s, window: 25s, fault: {kill: web}}",
        "chaos[0].window: the window it is judged over ends at 35s, after the load ends at 30s: "
        "the fault would be judged against no traffic (shorten window: or lengthen load.duration)",
    ),
    (
        "{name: k, at: 10s, window: 10s, repeat: 2, every: 10s, fault: {pause: web}}",
        "chaos[0].window: the window of its last injection (#2) ends at 30s, as the load ends at "
        "30s: the fault would be judged against no traffic (shorten window:, every: or repeat:, "
        "or lengthen load.duration)",
    ),
    (  # every defaults to 0 + 5s for an instantaneous step: 10, 15, 20, 25, 30
        "{name: k, at: 10s, repeat: 5, fault: {pause: web}}",
        "chaos[0].repeat: injection #5 would fire at 30s, as the load ends at 30s, so it would "
        "never run (lower repeat: or every:, or lengthen load.duration)",
    ),
]


@pytest.mark.parametrize(
    ("step", "expected"),
    OUTLIVES,
    ids=[e.split(":")[0] + str(i) for i, (_, e) in enumerate(OUTLIVES)],
)
def test_a_fault_that_outlives_the_load_is_invalid(
    tmp_path: Path, step: str, expected: str
) -> None:
    assert problems(tmp_path, steps(step)) == [f"{tmp_path}/topology.yaml:22: {expected}"]


@pytest.mark.parametrize(
    "step",
    [
        "{name: slow, at: 20s, for: 9500ms, fault: {pause: web-1}}",
        "{name: slow, at: 10s, for: 4s, repeat: 3, every: 5s, fault: {pause: web-1}}",  # ends 24s
        "{name: k, at: 10s, window: 19s, fault: {kill: web}}",
        "{name: k, at: 10s, repeat: 4, fault: {pause: web}}",  # the last fires at 25s
    ],
)
def test_faults_over_before_the_load_ends_are_valid(tmp_path: Path, step: str) -> None:
    assert valid(tmp_path, steps(step)).chaos[0].name


def test_a_step_after_the_load_is_reported_once(tmp_path: Path) -> None:
    text = steps("{name: slow, at: 40s, for: 5s, fault: {pause: web-1}}")
    assert [p.split(": ")[1] for p in problems(tmp_path, text)] == ["chaos[0].at"]


# ---------------------------------------------------------------- 3. dead targets


def test_a_step_hitting_a_killed_instance_names_the_kill(tmp_path: Path) -> None:
    text = steps(CHAOS[4:], "{name: cut, at: 12s, for: 2s, fault: {partition: {target: web-1}}}")
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:23: chaos[1].fault.partition.target: web-1 is already down: "
        "step 'kill web-1' killed it at 10s, and nothing starts it again during the load "
        "(target another instance or the service 'web', or fire this step before 10s)"
    ]


def test_a_repeated_kill_of_one_instance_is_invalid(tmp_path: Path) -> None:
    text = steps("{name: k, at: 5s, repeat: 2, fault: {kill: web-1}}")
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:22: chaos[0].fault.kill.target: injection #2: web-1 is "
        "already down: step 'k' killed it at 5s, and nothing starts it again during the load "
        "(target another instance or the service 'web', or fire this step before 5s)"
    ]


def test_an_earlier_step_in_the_file_order_can_fire_later(tmp_path: Path) -> None:
    text = steps("{name: cut, at: 12s, for: 2s, fault: {partition: web-1}}", CHAOS[4:])
    assert problems(tmp_path, text)[0].startswith(
        f"{tmp_path}/topology.yaml:22: chaos[0].fault.partition.target: web-1 is already down"
    )
    assert valid(tmp_path, steps("{name: cut, at: 8s, for: 1s, fault: {pause: web-1}}", CHAOS[4:]))


def test_a_windowed_stop_that_restores_frees_the_instance_after_its_window(tmp_path: Path) -> None:
    text = steps(
        "{name: stop web-1, at: 5s, for: 5s, fault: {stop: web-1}}",
        "{name: p, at: 8s, for: 1s, fault: {pause: web-1}}",
        "{name: q, at: 11s, for: 1s, fault: {pause: web-1}}",
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:23: chaos[1].fault.pause.target: web-1 is down: step "
        "'stop web-1' stopped it at 5s, until its window ends at 10s (target another instance "
        "or the service 'web', or fire this step outside 5s to 10s)"
    ]


def test_a_windowed_kill_without_restore_stays_dead(tmp_path: Path) -> None:
    kill = "{name: k, at: 5s, for: 3s, fault: {kill: web-1}}"
    later = "{name: p, at: 12s, for: 1s, fault: {pause: web-1}}"
    assert (
        "web-1 is already down: step 'k' killed it at 5s"
        in problems(tmp_path, steps(kill, later))[0]
    )
    restored = "{name: k, at: 5s, for: 3s, fault: {kill: {target: web-1, restore: true}}}"
    assert valid(tmp_path, steps(restored, later))


def test_pause_restart_and_process_kill_remove_nothing(tmp_path: Path) -> None:
    text = steps(
        "{name: a, at: 5s, fault: {pause: web-1}}",
        "{name: b, at: 6s, fault: {restart: web-1}}",
        "{name: c, at: 7s, fault: {process_kill: {target: web-1, process: nginx}}}",
        "{name: d, at: 8s, fault: {kill: web-1}}",
    )
    assert valid(tmp_path, text)


def test_a_service_target_picks_among_live_instances_only(tmp_path: Path) -> None:
    text = steps(
        CHAOS[4:], "{name: kill two, at: 12s, fault: {kill: {target: {service: web, count: 2}}}}"
    )
    picked = plan(valid(tmp_path, text))
    assert picked[0].hits == ["web-1"]
    assert picked[1].live["web"] == ["web-2", "web-3"] and picked[1].hits == ["web-2", "web-3"]


def test_no_live_instance_left_to_pick(tmp_path: Path) -> None:
    text = steps(
        "{name: k, at: 5s, repeat: 3, every: 5s, fault: {kill: web}}",
        "{name: cut, at: 22s, for: 2s, fault: {partition: {target: web}}}",
    )
    down = plan(Topology.model_validate({**_data(text), "assertions": []}))[2].live["web"]
    assert len(down) == 1  # the third kill still finds one
    [problem] = problems(tmp_path, text)
    assert problem.startswith(
        f"{tmp_path}/topology.yaml:23: chaos[1].fault.partition.target: no live instance of "
        "'web' is left to pick, all are down (web-1 by step 'k"
    )
    assert problem.endswith(
        "(add replicas to 'web', fire this step earlier, or drop one of those steps)"
    )


def _data(text: str) -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load(text)
    return data


def test_a_toxic_on_a_link_to_a_killed_service_is_invalid(tmp_path: Path) -> None:
    text = (
        steps(
            "{name: kill db, at: 5s, fault: {kill: mysql}}",
            "{name: slow db, at: 8s, for: 2s, fault: {latency: {link: web->mysql, latency: 100ms}}}",
        )
        + "links:\n  - {from: web, to: mysql}\n"
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:23: chaos[1].fault.latency.link: no live instance of 'mysql' "
        "is left to pick, all are down (mysql by step 'kill db' at 5s) (add replicas to 'mysql', "
        "fire this step earlier, or drop one of those steps)"
    ]


def test_vip_faults_need_a_live_lb(tmp_path: Path) -> None:
    text = steps(
        "{name: kill lbs, at: 5s, fault: {kill: {target: {service: lb, pick: all}}}}",
        "{name: failover, at: 8s, fault: {vip_failover: lb}}",
    )
    assert problems(tmp_path, text)[0].startswith(
        f"{tmp_path}/topology.yaml:23: chaos[1].fault.vip_failover.service: no live instance of "
        "'lb' is left to pick"
    )


def test_cross_experiment_dead_targets_are_reported_in_the_experiment_file(tmp_path: Path) -> None:
    kill = experiment(
        tmp_path,
        "kill",
        ["{name: kill web-2, at: 5s, fault: {kill: web-2}}"],
        ["{name: k, error_budget: {}}"],
    )
    cut = experiment(
        tmp_path,
        "cut",
        [
            "{name: early, at: 1s, for: 1s, fault: {pause: web-1}}",
            "{name: cut web-2, at: 9s, for: 2s, fault: {partition: web-2}}",
        ],
        ["{name: c, error_budget: {}}"],
    )
    text = with_experiments(kill, cut)
    assert problems(tmp_path, text) == [
        f"{tmp_path}/{cut}:5: chaos[1].fault.partition.target: web-2 is already down: step "
        "'kill web-2' killed it at 5s, and nothing starts it again during the load (target "
        "another instance or the service 'web', or fire this step before 5s)"
    ]
    assert valid(tmp_path, text, experiments=["cut"])  # alone, web-2 is alive


def test_all_shipped_experiments_together_hit_no_dead_container() -> None:
    path = ROOT / "topologies/experiments.yaml"
    names = ["web-node-kill", "vip-failover", "db-latency", "redis-partition"]
    for pick in [None, ["web-node-kill", "redis-partition"], *([n] for n in names)]:
        topo = load_topology(path, pick)
        assert all(p.problem is None for p in plan(topo))
    together = {p.injection.name: p for p in plan(load_topology(path))}
    killed = together["kill a web node"].hits
    cut = together["a web node loses redis"]
    assert killed and cut.hits and set(cut.hits).isdisjoint(killed)
    assert set(killed).isdisjoint(cut.live["web"])


def test_live_instances_follows_the_schedule(tmp_path: Path) -> None:
    topo = valid(
        tmp_path,
        steps(
            "{name: stop web-3, at: 5s, for: 4s, fault: {stop: web-3}}",
            "{name: kill web, at: 6s, repeat: 2, every: 6s, fault: {kill: web}}",
        ),
    )
    assert live_instances(topo, 0) == {
        "lb": ["lb-1", "lb-2"],
        "web": ["web-1", "web-2", "web-3"],
        "redis": ["redis"],
        "mysql": ["mysql"],
    }
    first = plan(topo)[1].hits
    assert first is not None and first[0] in ("web-1", "web-2")
    assert "web-3" not in live_instances(topo, 1)["web"]  # stopped until 9s
    again = live_instances(topo, 1, k=2)["web"]  # at 12s: web-3 is back, the first pick is not
    assert "web-3" in again and first[0] not in again and len(again) == 2
    with pytest.raises(ValueError, match="no injection #3"):
        live_instances(topo, 1, k=3)
    late = valid(tmp_path, steps("{name: k, at: 20s, repeat: 2, every: 5s, fault: {pause: web}}"))
    assert live_instances(late, 0, k=2)["web"] == ["web-1", "web-2", "web-3"]
    unchecked = _data(steps("{name: k, at: 20s, repeat: 3, every: 5s, fault: {pause: web}}"))
    with pytest.raises(ValueError, match="injection #3 of step 'k' never fires: at 30s the load"):
        live_instances(Topology.model_validate(unchecked), 0, k=3)
    with pytest.raises(
        ValueError, match=r"step 'kill web-1' has no injection #2 \(it is injected once\)"
    ):
        live_instances(load_topology(ROOT / "topologies/ha.yaml"), 0, k=2)


# ---------------------------------------------------------------- the run picks what validation saw


class Node:
    def __init__(self) -> None:
        self.status = "running"

    def reload(self) -> None:
        pass


def replay(topo: Topology) -> list[list[str] | None]:
    """Resolve every injection's target as the run would, against containers whose Docker status
    follows what the faults do; check each pick is the one validation planned."""
    p = make_plan(topo, "r1", "10.99.0.0/24", [])
    nodes = {c.instance: Node() for c in p.containers}
    ctx = FaultContext(nodes, "r1", p, random.Random(topo.seed))  # type: ignore[arg-type]
    back: dict[str, float] = {}
    got: list[list[str] | None] = []
    for planned in plan(topo):
        inj = planned.injection
        for inst, until in list(back.items()):
            if until < inj.offset:
                nodes[inst].status = "running"
                del back[inst]
        target = getattr(inj.step.fault.params, "target", None)
        if target is None or (isinstance(target, str) and target.startswith("vip_holder:")):
            got.append(None)
            continue
        hits = resolve(target, ctx)
        assert hits == planned.hits, inj.name
        got.append(hits)
        if inj.step.fault.kind in ("kill", "stop"):
            for inst in hits:
                nodes[inst].status = "exited"
                if inj.step.for_ is not None and inj.step.fault.params.restore:
                    back[inst] = inj.offset + inj.step.for_
    return got


def test_the_run_picks_the_targets_validation_planned(tmp_path: Path) -> None:
    replay(load_topology(ROOT / "topologies/experiments.yaml"))
    for seed in range(12):
        text = steps(
            "{name: kill web, at: 2s, repeat: 2, every: 3s, fault: {kill: web}}",
            "{name: stop some, at: 4s, for: 3s, fault: {stop: {target: {service: web, percent: 50, pick: random}}}}",
            "{name: cut, at: 9s, for: 2s, fault: {partition: {target: web}}}",
        ).replace("replicas: 3", "replicas: 5")
        replay(valid(tmp_path, text + f"seed: {seed}\n"))


def test_resolve_never_picks_a_dead_instance_and_fails_when_none_is_left() -> None:
    topo = Topology.model_validate(_data(BASE))
    p = make_plan(topo, "r1", "10.99.0.0/24", [])
    nodes = {c.instance: Node() for c in p.containers}
    ctx = FaultContext(nodes, "r1", p, random.Random(0))  # type: ignore[arg-type]
    nodes["web-1"].status, nodes["web-3"].status = "exited", "dead"
    assert {resolve("web", ctx)[0] for _ in range(20)} == {"web-2"}
    assert resolve(TargetSpec(service="web", pick="first"), ctx) == ["web-2"]
    assert resolve(TargetSpec(service="web", pick="all"), ctx) == ["web-2"]
    assert resolve("web-1", ctx) == ["web-1"]  # named explicitly: validation's business
    nodes["web-2"].status = "exited"
    with pytest.raises(InfrastructureError, match="no live instance of 'web' to pick"):
        resolve("web", ctx)


# ---------------------------------------------------------------- 4. window:


def test_window_is_for_instantaneous_steps_only(tmp_path: Path) -> None:
    text = steps("{name: k, at: 10s, for: 2s, window: 5s, fault: {kill: web}}")
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:22: chaos[0].window: window: is for instantaneous faults, and "
        "this step has for: 2s, which already is its window (remove window:)"
    ]


def test_a_zero_window_is_invalid(tmp_path: Path) -> None:
    assert problems(tmp_path, steps("{name: k, at: 10s, window: 0s, fault: {kill: web}}")) == [
        f"{tmp_path}/topology.yaml:22: chaos[0].window: a window of 0s judges nothing "
        "(write e.g. window: 10s)"
    ]


def test_window_is_kept_and_in_the_schema(tmp_path: Path) -> None:
    step = valid(tmp_path, steps("{name: k, at: 10s, window: 15s, fault: {kill: web}}")).chaos[0]
    assert step.window == 15.0 and step.for_ is None
    props = json_schema()["$defs"]["ChaosStep"]["properties"]
    assert "window" in props and "for" in props


def test_injections_follow_the_schedule_defaults() -> None:
    step = ChaosStep.model_validate(
        {"name": "s", "at": 1, "for": 2, "repeat": 3, "fault": {"pause": "web-1"}}
    )
    assert step.interval == 7.0
    assert step.injections() == [(1.0, "s"), (8.0, "s #2"), (15.0, "s #3")]
    from harness.chaos.schedule import occurrences

    assert [(t, n) for t, _, n in occurrences([step])] == step.injections()


# ---------------------------------------------------------------- 5. NAME#2


def repeated(*assertions: str) -> str:
    return edit(CHAOS, "  - {name: k, at: 5s, for: 1s, repeat: 3, fault: {pause: web-1}}").replace(
        ASSERT_2, "\n".join(f"  - {a}" for a in assertions)
    )


def test_later_injections_are_addressable_and_come_back_as_the_schedule_names_them(
    tmp_path: Path,
) -> None:
    topo = valid(
        tmp_path,
        repeated(
            "{name: a, error_budget: {}, during: 'fault:k#2'}",
            "{name: b, error_budget: {}, during: 'fault:k #3'}",
            "{name: c, error_budget: {}, during: 'fault:k#1'}",
            "{name: d, error_budget: {}, during: 'fault:k'}",
            "{name: e, ejection_time: {service: web, fault: 'k#2'}}",
            "{name: f, ejection_time: {service: web, fault: 'k #3'}}",
        ),
    )
    assert [a.during for a in topo.assertions[1:5]] == [
        "fault:k #2",
        "fault:k #3",
        "fault:k",
        "fault:k",
    ]
    faults = [a.params for a in topo.assertions[5:]]
    assert all(isinstance(f, EjectionTime) for f in faults)
    assert [f.fault for f in faults] == ["k #2", "k #3"]


def test_an_injection_past_the_repeat_is_invalid(tmp_path: Path) -> None:
    text = repeated(
        "{name: a, error_budget: {}, during: 'fault:k#5'}",
        "{name: e, failover_time: {service: lb, fault: 'k #4'}}",
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:25: assertions[1].during: step 'k' is injected 3 times, so it "
        "has no #5 (use #1 to #3, e.g. fault:k#3)",
        f"{tmp_path}/topology.yaml:26: assertions[2].failover_time.fault: step 'k' is injected 3 "
        "times, so it has no #4 (use #1 to #3, e.g. fault: k#3)",
    ]


def test_a_step_injected_once_has_no_second_injection(tmp_path: Path) -> None:
    text = edit(ASSERT_2, "  - {error_budget: {}, during: 'fault:kill web-1#2'}")
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:25: assertions[1].during: step 'kill web-1' is injected once, "
        "so it has no #2 (write fault:kill web-1, or give the step repeat: 2)"
    ]


def test_an_unknown_step_with_a_number_is_still_unknown(tmp_path: Path) -> None:
    text = edit(ASSERT_2, "  - {error_budget: {}, during: 'fault:kill web-2#2'}")
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:25: assertions[1].during: no chaos step named "
        "'kill web-2#2' (did you mean 'kill web-1'?)"
    ]


def test_an_unquoted_injection_number_is_not_silently_dropped_as_a_comment(
    tmp_path: Path,
) -> None:
    text = repeated("{name: a, error_budget: {}}").replace(
        "  - {name: a, error_budget: {}}",
        "  - name: a\n    error_budget: {}\n    during: fault:k #2",
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:27: assertions[1].during: '#2' after 'fault:k' starts a YAML "
        'comment, so it would be dropped (quote the whole value: "fault:k #2")'
    ]
    assert valid(tmp_path, text.replace("fault:k #2", "'fault:k #2'  # the second"))
    assert valid(tmp_path, text.replace("fault:k #2", "fault:k  # the first"))
    assert valid(tmp_path, text.replace("fault:k #2", "steady  #1 of two windows"))


def test_a_step_named_like_another_steps_injection_is_invalid(tmp_path: Path) -> None:
    text = steps(
        "{name: k, at: 5s, repeat: 2, fault: {pause: web-1}}",
        "{name: 'k#2', at: 6s, fault: {pause: web-2}}",
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:23: chaos[1].name: 'k#2' is also what injection #2 of step "
        "'k' is called, so the two cannot be told apart (rename one)"
    ]


# ---------------------------------------------------------------- 6. compare:


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+20%", ("relative", 0.2)),
        ("+0%", ("relative", 0.0)),
        ("+ 10 %", ("relative", 0.1)),
        ("+0.005", ("absolute", 0.005)),
        ("+3", ("absolute", 3.0)),
        ("+500ms", ("absolute", 0.5)),
        ("+2s", ("absolute", 2.0)),
        ("+1m30s", ("absolute", 90.0)),
    ],
)
def test_parse_tolerance(text: str, expected: tuple[str, float]) -> None:
    mode, value = parse_tolerance(text)
    assert mode == expected[0] and value == pytest.approx(expected[1])


FORMS = "+10% relative to the baseline, +0.005 absolute, or a duration such as +500ms"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "10%",
            "'10%' has no '+': a tolerance is how much worse than the baseline a figure may get (write '+10%')",
        ),
        (
            "-5%",
            "'-5%' is negative: a tolerance is how much worse than the baseline a figure may get (write e.g. +10%, or +0% for no regression at all)",
        ),
        ("+ten", f"'+ten' is not a tolerance (write {FORMS})"),
        ("+5%%", f"'+5%%' is not a tolerance (write {FORMS})"),
        (
            0.005,
            "0.005 is a number, not a tolerance: YAML reads an unquoted +0.005 as one (quote it, '+0.005', or write a percentage such as '+10%')",
        ),
        (None, f"expected a tolerance, got nothing (write {FORMS})"),
    ],
)
def test_malformed_tolerances(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_tolerance(value)
    assert str(info.value) == message


def test_a_malformed_tolerance_is_reported_at_its_key(tmp_path: Path) -> None:
    text = BASE + "compare:\n  tolerance:\n    default: +0.005\n    failover_time: 20 %\n"
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:28: compare.tolerance.default: 0.005 is a number, not a "
        "tolerance: YAML reads an unquoted +0.005 as one (quote it, '+0.005', or write a "
        "percentage such as '+10%')",
        f"{tmp_path}/topology.yaml:29: compare.tolerance.failover_time: '20 %' has no '+': a "
        "tolerance is how much worse than the baseline a figure may get (write '+20%')",
    ]


def test_tolerance_keys_are_kinds_names_or_default(tmp_path: Path) -> None:
    named = edit(
        ASSERT_2, "  - {name: no errors before the faults, during: steady, error_budget: {}}"
    )
    text = named + (
        "compare:\n  tolerance:\n"
        "    failover_tme: '+20%'\n"
        "    no errors before the fault: '+0.005'\n"
        "    xyzzy: '+1'\n"
        "    session_continuity: '+1'\n"
        "    default: '+5%'\n"
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:28: compare.tolerance.failover_tme: 'failover_tme' is neither "
        "an assertion kind, an assertion's name nor default (did you mean 'failover_time'?)",
        f'{tmp_path}/topology.yaml:29: compare.tolerance["no\\x20errors\\x20before\\x20the\\x20fault"]: '
        "'no errors before the fault' is neither an assertion kind, an assertion's name nor "
        "default (did you mean 'no errors before the faults'?)",
        f"{tmp_path}/topology.yaml:30: compare.tolerance.xyzzy: 'xyzzy' is neither an assertion "
        "kind, an assertion's name nor default (use default, an assertion kind such as "
        "failover_time, or an assertion's name: no errors before the faults)",
    ]


def test_a_duration_tolerance_needs_a_figure_in_seconds(tmp_path: Path) -> None:
    text = (
        BASE
        + "compare:\n  tolerance: {error_budget: '+5s', failover_time: '+500ms', default: '+1s'}\n"
    )
    assert problems(tmp_path, text) == [
        f"{tmp_path}/topology.yaml:27: compare.tolerance.error_budget: '+5s' is a duration, but "
        "error_budget is not measured in seconds (write +N in its own unit or +N%)"
    ]


def test_a_compare_block_that_validates(tmp_path: Path) -> None:
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    (tmp_path / "runs" / "r1" / "journal.json").write_text("{}")
    text = BASE + (
        "compare:\n  baseline: runs/r1\n"
        "  tolerance: {error_budget: '+0.005', session_continuity: '+1', default: '+10%'}\n"
    )
    cmp = valid(tmp_path, text).compare
    assert cmp is not None and cmp.baseline == "runs/r1"
    assert cmp.tolerance_for("error_budget", "error_budget") == ("absolute", 0.005)
    assert cmp.tolerance_for("latency", "p95") == ("relative", 0.1)
    assert valid(tmp_path, BASE + "compare: {baseline: runs/r1/journal.json}\n").compare
    assert Compare().tolerance == {"default": "+10%"}
    assert valid(tmp_path, BASE).compare is None


def test_a_missing_baseline_names_the_resolved_path(tmp_path: Path) -> None:
    assert problems(tmp_path, BASE + "compare: {baseline: runs/nope}\n") == [
        f"{tmp_path}/topology.yaml:26: compare.baseline: no run directory or journal.json at "
        f"{tmp_path}/runs/nope (paths are relative to the topology file; runs are under "
        "runs/<run-id>/)"
    ]
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    assert problems(tmp_path, BASE + "compare: {baseline: runs/empty}\n") == [
        f"{tmp_path}/topology.yaml:26: compare.baseline: {tmp_path}/runs/empty has no "
        "journal.json (give a run directory, runs/<run-id>, or its journal.json)"
    ]


def test_tolerances_may_name_assertions_of_experiments_not_picked(tmp_path: Path) -> None:
    a = experiment(
        tmp_path,
        "a",
        ["{name: a, at: 5s, fault: {pause: web-1}}"],
        ["{name: from a, error_budget: {}}"],
    )
    b = experiment(
        tmp_path,
        "b",
        ["{name: b, at: 5s, fault: {pause: web-2}}"],
        ["{name: from b, error_budget: {}}"],
    )
    text = with_experiments(a, b) + "compare:\n  tolerance: {from a: '+1%', from b: '+2%'}\n"
    assert valid(tmp_path, text, experiments=["b"]).compare


def test_compare_is_in_the_schema() -> None:
    props = json_schema()["properties"]
    assert "compare" in props
    compare = json_schema()["$defs"]["Compare"]
    assert set(compare["properties"]) == {"baseline", "tolerance"}
    assert compare["additionalProperties"] is False
