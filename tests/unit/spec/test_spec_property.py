"""Mutated topology files never crash the loader: a `Topology` or one-line `file:line: field: problem`.

Each example takes a shipped topology (`topologies/*.yaml` and `topologies/examples/*.yaml`),
applies one to three mutations (delete a key, misspell a key, change a value's type, corrupt a
name reference, duplicate a list item, set a boundary value, add a service, a `depends_on`
entry or a link, or damage the text itself), writes it beside a copy of its directory (so its
relative paths resolve) and loads it. Any exception other than `SpecError` fails; whatever is
accepted must build a plan (`make_plan`) and pass the JSON Schema (`harness schema`). The
mutation engine is tests/fuzz_validate.py's, which runs the same property 10,000 times.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import harness.spec.models as models
from harness.errors import SpecError
from harness.plan.build import make_plan
from harness.plan.check import load_topology
from harness.spec.models import Topology
from tests.fuzz_validate import (
    SHIPPED,
    SOURCES,
    Workdir,
    check_problem,
    dump,
    get,
    mutate,
    plan_subnet,
    set_,
    typo,
    walk,
)

ROOT = Path(__file__).resolve().parents[3]
T = TypeVar("T")

PROBLEM = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<field>\S+): (?P<msg>.+)$")

# Every key any model knows (field names and aliases): a "typo" that lands on one is no typo.
KNOWN_KEYS = {
    key
    for model in vars(models).values()
    if isinstance(model, type) and issubclass(model, models.StrictModel)
    for name, field in model.model_fields.items()
    for key in (name, field.alias)
    if key
}
FREE_FORM = {"services", "env", "weights", "config", "user_classes"}  # maps keyed by names
REFERENCES = {
    "backends",
    "depends_on",
    "target",
    "kill",
    "stop",
    "restart",
    "pause",
    "vip_failover",
    "from",
    "to",
}

# 5 tests, each well under a second at these sizes: the fast suite stays fast. The 10,000-case
# run of the same property is `python -m tests.fuzz_validate --cases 10000`.
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

Path_ = tuple[Any, ...]


def test_there_are_shipped_topologies() -> None:
    assert len(SHIPPED) >= 10
    for path in SHIPPED:
        assert isinstance(load_topology(path), Topology)


def field_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class HypothesisChooser:
    """The fuzz engine's choices, drawn by hypothesis (so failures shrink)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def choice(self, seq: Sequence[T]) -> T:
        return self.data.draw(st.sampled_from(list(seq)))

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def text(self, lo: int, hi: int) -> str:
        return self.data.draw(st.text(min_size=lo, max_size=hi))

    def value(self) -> Any:
        return self.data.draw(values)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.integers(min_value=10**20, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["", "0", "yes", "~", "1s", "-1s", "2024-01-01", "web", "null", "{", "[", "&a", "*a"]
    ),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), scalars, max_size=3),
)


@st.composite
def mutants(draw: st.DrawFn) -> tuple[str, str, str]:
    """(source, YAML text, what was done) for one to three mutations of one shipped topology."""
    data = draw(st.data())
    source = draw(st.sampled_from(sorted(SOURCES)))
    text, ops = mutate(HypothesisChooser(data), source)
    return source, text, f"{' + '.join(ops)} in {source}"


# ------------------------------------------------------------------ the property


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    return Workdir(tmp_path_factory.mktemp("mutants"))


def check(path: Path) -> Topology | list[tuple[int, str, str]]:
    """Load `path`: a `Topology`, or the parsed problems after checking each is one good line
    (in `path`, or in an experiment file it names) with a fix part."""
    lines_in_file = len(path.read_text().splitlines())
    try:
        return load_topology(path)
    except SpecError as exc:
        assert exc.problems, "a SpecError with no problem"
        parsed = []
        for problem in exc.problems:
            why = check_problem(problem, path, lines_in_file)
            assert why is None, f"{why}: {problem!r}"
            m = PROBLEM.match(problem)
            assert m
            parsed.append((int(m["line"]), m["field"], m["msg"]))
        return parsed


@SETTINGS
@given(mutant=mutants())
def test_mutants_load_or_fail_with_one_line_problems(
    work: Workdir, mutant: tuple[str, str, str]
) -> None:
    source, text, _what = mutant
    path = work.path(source, "mutant.yaml")
    path.write_text(text)
    result = check(path)
    assert isinstance(result, Topology | list)


@pytest.fixture(scope="module")
def validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    from harness.spec.schema import json_schema

    return jsonschema.Draft202012Validator(json_schema())


@settings(SETTINGS, max_examples=600)
@given(mutant=mutants())
def test_what_validation_accepts_builds_a_plan_and_passes_the_schema(
    work: Workdir, validator: Any, mutant: tuple[str, str, str]
) -> None:
    """The property of issue 11: for every accepted mutant, make_plan succeeds (with no two
    containers, or a container and a VIP, on one address) and the JSON Schema agrees."""
    source, text, what = mutant
    path = work.path(source, "accepted.yaml")
    path.write_text(text)
    result = check(path)
    if not isinstance(result, Topology):
        return
    plan = make_plan(result, "prop", plan_subnet(result), [], base_dir=path.parent)
    ips = [c.ip for c in plan.containers]
    assert len(set(ips)) == len(ips) and not set(plan.vips.values()) & set(ips), what
    assert [e.message for e in validator.iter_errors(yaml.safe_load(text))] == [], what


@SETTINGS
@given(data=st.data())
def test_a_misspelt_field_is_reported_on_its_line(work: Workdir, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(SOURCES)))
    source = copy.deepcopy(SOURCES[name])
    keys = [
        p
        for p, _ in walk(source)
        if p and isinstance(p[-1], str) and (len(p) < 2 or p[-2] not in FREE_FORM)
    ]
    path = data.draw(st.sampled_from(keys))
    parent = get(source, path[:-1])
    wrong = typo(HypothesisChooser(data), path[-1])
    assume(wrong not in KNOWN_KEYS and wrong not in parent)
    parent[wrong] = parent.pop(path[-1])
    file = work.path(name, "typo.yaml")
    file.write_text(dump(source))
    result = check(file)
    assert isinstance(result, list), f"'{wrong}' for '{path[-1]}' was accepted"
    text_lines = file.read_text().splitlines()
    hits = [(line, field, msg) for line, field, msg in result if f"unknown key '{wrong}'" in msg]
    assert hits, result
    line, field, msg = hits[0]
    assert field == field_path(path[:-1] + (wrong,))
    assert wrong in text_lines[line - 1]
    assert msg.endswith(")")  # "(did you mean ...?)" or "(known keys: ...)"


@SETTINGS
@given(data=st.data())
def test_a_corrupted_reference_is_reported_at_the_reference(
    work: Workdir, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(SOURCES)))
    source = copy.deepcopy(SOURCES[name])
    refs = [
        p
        for p, v in walk(source)
        if isinstance(v, str)
        and p
        and (p[-1] in REFERENCES or (len(p) > 1 and p[-2] == "depends_on"))
    ]
    path = data.draw(st.sampled_from(refs))
    names = {n for n, s in source["services"].items()} | {
        f"{n}-{i}" for n, s in source["services"].items() for i in range(1, 21)
    }
    old = get(source, path)
    new = old + data.draw(st.text(st.characters(codec="ascii"), min_size=1, max_size=8))
    assume(new not in names)
    set_(source, path, new)
    file = work.path(name, "reference.yaml")
    file.write_text(dump(source))
    result = check(file)
    assert isinstance(result, list), f"dangling reference {new!r} at {path} was accepted"
    assert any(field.startswith(field_path(path)) for _, field, _ in result), result


# ------------------------------------------------------------------ the CLI never touches Docker


@contextlib.contextmanager
def no_docker() -> Iterator[list[mock.MagicMock]]:
    boom = AssertionError("validate must not talk to Docker")
    with (
        mock.patch("harness.runtime.docker.client", side_effect=boom) as client,
        mock.patch("docker.from_env", side_effect=boom) as from_env,
        mock.patch("docker.DockerClient", side_effect=boom) as docker_client,
    ):
        yield [client, from_env, docker_client]


@settings(SETTINGS, max_examples=50)
@given(mutant=mutants())
def test_cli_validate_exits_0_or_3_without_docker(
    work: Workdir, mutant: tuple[str, str, str]
) -> None:
    from harness.cli import main

    path = work.path(mutant[0], "cli.yaml")
    path.write_text(mutant[1])
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        no_docker() as mocks,
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        code = main(["validate", str(path)])
    assert code in (0, 3), stderr.getvalue()
    assert not any(m.called for m in mocks)
    if code == 3:  # rich may wrap a long line (see test_spec_errors); unwrapped, it names the file
        assert stderr.getvalue().replace("\n", "").startswith(f"{path}:")
        assert "Traceback" not in stderr.getvalue()
    else:
        assert "valid" in stdout.getvalue()
