"""The JSON Schema of topology files accepts every shipped topology and rejects unknown keys."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.spec.schema import SCHEMA_DIALECT, SCHEMA_ID, json_schema

jsonschema = pytest.importorskip("jsonschema")  # a dev dependency (pyproject: dev extra)

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "topologies").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator: Any, data: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)
    ]


def shipped(name: str) -> Any:
    return yaml.safe_load((ROOT / "topologies" / name).read_text())


def test_schema_header() -> None:
    schema = json_schema()
    assert schema["$schema"] == SCHEMA_DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert schema["title"] == "harness topology"
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "services"}
    json.dumps(schema)  # serialisable as is, for `harness schema`


def test_schema_is_a_fresh_copy_each_time() -> None:
    first = json_schema()
    first["$defs"].clear()
    assert json_schema()["$defs"], "json_schema() must not hand out shared state"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_topology_is_valid(validator: Any, path: Path) -> None:
    assert errors(validator, yaml.safe_load(path.read_text())) == []


def test_there_are_shipped_topologies() -> None:
    assert len(SHIPPED) >= 2


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ((), "sevices"),
        (("services", "lb"), "redispach"),
        (("services", "lb", "keepalived"), "vips"),
        (("load",), "user"),
        (("chaos", 0), "att"),
        (("chaos", 0, "fault"), "kil"),
        (("assertions", 0, "session_continuity"), "max_lots"),
    ],
)
def test_unknown_keys_are_rejected(validator: Any, where: tuple[Any, ...], key: str) -> None:
    data = copy.deepcopy(shipped("ha.yaml"))
    node = data
    for part in where:
        node = node[part]
    node[key] = 1
    problems = errors(validator, data)
    assert problems, f"{key} under {where} was accepted"
    assert any(key in p for p in problems), problems


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["services"].update({"Web": {"kind": "web"}}), "Web"),  # names are lowercase
        (lambda d: d["services"]["redis"].update({"kind": "redsi"}), "redsi"),
        (lambda d: d["services"]["web"].update({"replicas": 0}), "0"),
        (lambda d: d["load"].update({"duration": "10parsecs"}), "10parsecs"),
        (lambda d: d["load"].update({"duration": -1}), "-1"),
        (lambda d: d.update({"version": 2}), "version: 1 was expected"),
        (lambda d: d["assertions"].append({"during": "sometime", "error_budget": {}}), "sometime"),
    ],
    ids=[
        "uppercase-name",
        "unknown-kind",
        "replicas-0",
        "bad-duration",
        "negative-duration",
        "version-2",
        "bad-window",
    ],
)
def test_bad_values_are_rejected(validator: Any, edit: Any, expected: str) -> None:
    data = copy.deepcopy(shipped("ha.yaml"))
    edit(data)
    problems = errors(validator, data)
    assert problems, "accepted"
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    "value",
    ["500ms", "2s", "1m30s", "1h", 1, 2.5],  # a load of 0s is refused (issue 11)
)
def test_durations_as_users_write_them(validator: Any, value: Any) -> None:
    data = copy.deepcopy(shipped("ha.yaml"))
    data["load"]["duration"] = value
    assert errors(validator, data) == []


@pytest.mark.parametrize(
    "fault",
    [
        {"kill": "web-1"},  # shorthand: the target
        {"kill": {"target": "web-1"}},
        {"stop": {"target": {"service": "web", "pick": "first"}}},
        {"vip_failover": "lb"},
        {"down": "web->mysql"},
    ],
    ids=[
        "kill-shorthand",
        "kill-long",
        "stop-target-spec",
        "vip-failover-shorthand",
        "toxic-shorthand",
    ],
)
def test_fault_shorthands_are_accepted(validator: Any, fault: dict[str, Any]) -> None:
    data = copy.deepcopy(shipped("ha.yaml"))
    data["chaos"][0]["fault"] = fault
    assert errors(validator, data) == []


def test_network_subnet_is_in_the_schema(validator: Any) -> None:
    data = copy.deepcopy(shipped("ha.yaml"))
    data["network"] = {"subnet": "10.213.7.0/24"}
    assert errors(validator, data) == []
    data["network"] = {"subnet": "10.213.7.0/24", "gateway": "10.213.7.1"}
    assert any("gateway" in p for p in errors(validator, data))


def test_chaos_window_is_in_the_schema(validator: Any) -> None:
    data = copy.deepcopy(shipped("ha.yaml"))
    data["chaos"][0]["window"] = "10s"
    assert errors(validator, data) == []
    data["chaos"][0]["window"] = "10 parsecs"
    assert any("window" in p for p in errors(validator, data))


def test_compare_is_in_the_schema(validator: Any) -> None:
    data = copy.deepcopy(shipped("ha.yaml"))
    data["compare"] = {
        "baseline": "runs/20261130-101010-abcd",
        "tolerance": {"failover_time": "+20%", "error_budget": "+0.005", "default": "+500ms"},
    }
    assert errors(validator, data) == []
    for bad in (
        {"tolerance": {"default": "10%"}},  # no '+'
        {"tolerance": {"default": 0.1}},
        {"baseline_run": "x"},
    ):
        data["compare"] = bad
        problems = errors(validator, data)  # `compare` may be null: one anyOf error for it
        assert problems and all(p.startswith("compare: ") for p in problems), (bad, problems)


# ---------------------------------------------------------------- issue 11: schema and validator agree

INTEGRATION = sorted((ROOT / "tests" / "integration" / "topologies").rglob("*.yaml"))
CORPUS = SHIPPED + sorted((ROOT / "topologies" / "examples").glob("*.yaml")) + INTEGRATION


@pytest.mark.parametrize("path", CORPUS, ids=[str(p.relative_to(ROOT)) for p in CORPUS])
def test_every_file_validate_accepts_passes_the_schema(validator: Any, path: Path) -> None:
    """The accepted corpus (shipped, examples, the Docker tests' topologies): what the
    validator accepts, the schema accepts. Mutants of it: tests/unit/test_spec_property.py."""
    from harness.spec.loader import load_topology

    load_topology(path, require_assertions=False)
    assert errors(validator, yaml.safe_load(path.read_text())) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["services"]["web"].update({"replicas": True}), "True"),
        (lambda d: d["services"]["web"].update({"replicas": "3"}), "'3'"),
        (lambda d: d["load"].update({"users": True}), "True"),
        (lambda d: d["services"]["lb"].update({"cookie": "yes"}), "'yes'"),
        (lambda d: d["load"].update({"duration": "1 0s"}), "1 0s"),
        (lambda d: d["load"].update({"duration": 0}), "0"),
        (lambda d: d["services"]["lb"]["check"].update({"interval": 0}), "0"),
        (lambda d: d["services"]["lb"]["keepalived"].update({"advert_int": 3600}), "3600"),
        (lambda d: d["services"]["lb"]["check"].update({"path": "/a b"}), "/a b"),
        (lambda d: d["services"]["web"].update({"image": "not an image"}), "not an image"),
        (lambda d: d["assertions"].append({"promql": "", "below": 1}), "''"),
    ],
    ids=[
        "replicas-true",
        "replicas-text",
        "users-true",
        "cookie-yes",
        "duration-with-a-space-inside",
        "load-of-0",
        "interval-0",
        "advert-int-1h",
        "path-with-space",
        "image-with-spaces",
        "empty-promql",
    ],
)
def test_schema_and_validator_both_refuse(
    tmp_path: Path, validator: Any, edit: Any, expected: str
) -> None:
    from harness.errors import SpecError
    from harness.spec.loader import load_topology

    data = copy.deepcopy(shipped("ha.yaml"))
    edit(data)
    assert any(expected in p for p in errors(validator, data)), errors(validator, data)
    path = tmp_path / "ha.yaml"
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "web_node.py").write_text("")
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError):
        load_topology(path)
