"""Mutated topology files never crash the loader: a `Topology` or one-line `file:line: field: problem`.

Each example takes a shipped topology (`topologies/*.yaml`), applies one mutation (delete a key,
misspell a key, change a value's type, corrupt a name reference, duplicate a list item, or damage
the text itself), writes it to a file and loads it. Any exception other than `SpecError` fails.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import harness.spec.models as models
from harness.errors import SpecError
from harness.spec.loader import load_topology
from harness.spec.models import Topology

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "topologies").glob("*.yaml"))
SOURCES = {p.name: yaml.safe_load(p.read_text()) for p in SHIPPED}

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
FREE_FORM = {"services", "env", "weights", "config"}  # maps whose keys are names, not fields
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

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

Path_ = tuple[Any, ...]


def test_there_are_shipped_topologies() -> None:
    assert len(SHIPPED) >= 2
    for path in SHIPPED:
        assert isinstance(load_topology(path), Topology)


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


def field_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def typo(draw: st.DrawFn, word: str) -> str:
    i = draw(st.integers(0, len(word)))
    c = draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz_-"))
    op = draw(st.sampled_from(["insert", "delete", "replace", "swap"]))
    if op == "insert" or len(word) < 2:
        return word[:i] + c + word[i:]
    i = min(i, len(word) - 2)
    if op == "delete":
        return word[:i] + word[i + 1 :]
    if op == "replace":
        return word[:i] + c + word[i + 1 :]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


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


DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when there: the budget is 30 s


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=DUMPER, sort_keys=False, allow_unicode=False)


@st.composite
def mutants(draw: st.DrawFn) -> tuple[str, str]:
    """(YAML text, what was done) for one mutation of one shipped topology."""
    name = draw(st.sampled_from(sorted(SOURCES)))
    data = copy.deepcopy(SOURCES[name])
    nodes = list(walk(data))
    op = draw(
        st.sampled_from(
            [
                "delete",
                "rename",
                "retype",
                "reference",
                "duplicate",
                "dup-line",
                "drop-line",
                "insert-char",
            ]
        )
    )
    if op in ("delete", "rename"):
        path = draw(st.sampled_from([p for p, _ in nodes if p and isinstance(p[-1], str)]))
        parent = get(data, path[:-1])
        value = parent.pop(path[-1])
        if op == "rename":
            parent[typo(draw, path[-1])] = value
    elif op == "retype":
        path = draw(st.sampled_from([p for p, _ in nodes if p]))
        old = get(data, path)
        new = draw(values.filter(lambda v: type(v) is not type(old)))
        set_(data, path, new)
    elif op == "reference":
        strings = [p for p, v in nodes if isinstance(v, str) and p]
        path = draw(st.sampled_from(strings))
        old = get(data, path)
        i = draw(st.integers(0, len(old)))
        set_(data, path, old[:i] + draw(st.text(min_size=1, max_size=10)) + old[i:])
    elif op == "duplicate":
        lists = [p for p, v in nodes if isinstance(v, list) and v]
        if lists:
            items = get(data, draw(st.sampled_from(lists)))
            items.insert(
                draw(st.integers(0, len(items))), copy.deepcopy(draw(st.sampled_from(items)))
            )
    text = dump(data)
    if op in ("dup-line", "drop-line", "insert-char"):
        text = (ROOT / "topologies" / name).read_text()
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        if op == "dup-line":
            lines.insert(i, lines[i])
        elif op == "drop-line":
            del lines[i]
        else:
            j = draw(st.integers(0, len(lines[i])))
            lines[i] = (
                lines[i][:j] + draw(st.sampled_from(list("\t:-[]{}&*!|>'\"#%@` ,?"))) + lines[i][j:]
            )
        text = "".join(lines)
    return text, f"{op} in {name}"


# ------------------------------------------------------------------ the property


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutants")


def check(path: Path) -> Topology | list[tuple[int, str, str]]:
    """Load `path`: a `Topology`, or the parsed problems after checking each is one good line."""
    lines_in_file = len(path.read_text().splitlines())
    try:
        return load_topology(path)
    except SpecError as exc:
        assert exc.problems, "a SpecError with no problem"
        parsed = []
        for problem in exc.problems:
            assert "\n" not in problem and "\r" not in problem, repr(problem)
            m = PROBLEM.match(problem)
            assert m and m["file"] == str(path), f"not `file:line: field: problem`: {problem!r}"
            assert 1 <= int(m["line"]) <= max(1, lines_in_file), (
                f"line outside the file: {problem!r}"
            )
            assert "Traceback" not in problem and "pydantic" not in problem.lower(), problem
            parsed.append((int(m["line"]), m["field"], m["msg"]))
        return parsed


@SETTINGS
@given(mutant=mutants())
def test_mutants_load_or_fail_with_one_line_problems(
    workdir: Path, mutant: tuple[str, str]
) -> None:
    text, _what = mutant
    path = workdir / "mutant.yaml"
    path.write_text(text)
    result = check(path)
    assert isinstance(result, Topology | list)


@SETTINGS
@given(data=st.data())
def test_a_misspelt_field_is_reported_on_its_line(workdir: Path, data: st.DataObject) -> None:
    source = copy.deepcopy(SOURCES[data.draw(st.sampled_from(sorted(SOURCES)))])
    keys = [
        p
        for p, _ in walk(source)
        if p and isinstance(p[-1], str) and (len(p) < 2 or p[-2] not in FREE_FORM)
    ]
    path = data.draw(st.sampled_from(keys))
    parent = get(source, path[:-1])
    wrong = data.draw(st.composite(lambda draw: typo(draw, path[-1]))())
    assume(wrong not in KNOWN_KEYS and wrong not in parent)
    parent[wrong] = parent.pop(path[-1])
    file = workdir / "typo.yaml"
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
    workdir: Path, data: st.DataObject
) -> None:
    source = copy.deepcopy(SOURCES[data.draw(st.sampled_from(sorted(SOURCES)))])
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
    file = workdir / "reference.yaml"
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
def test_cli_validate_exits_0_or_3_without_docker(workdir: Path, mutant: tuple[str, str]) -> None:
    from harness.cli import main

    path = workdir / "cli.yaml"
    path.write_text(mutant[0])
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
