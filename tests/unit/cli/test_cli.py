"""The CLI's contract: exit codes, one-line errors, no traceback, the schema verb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_schema_prints_a_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/") and "services" in schema["properties"]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "topologies").glob("*.yaml")))
def test_every_shipped_topology_validates(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(REPO / "topologies" / name)]) == 0
    assert "valid" in capsys.readouterr().out


def test_examples_validate_too() -> None:
    for path in (REPO / "topologies/examples").glob("*.yaml"):
        assert main(["validate", str(path)]) == 0, path


def test_a_missing_file_is_exit_3_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no/such.yaml"]) == 3
    err = capsys.readouterr().err
    assert "no/such.yaml" in err and "Traceback" not in err


def test_report_of_a_missing_run_dir_is_invalid_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 3
    assert "journal" in capsys.readouterr().err


def test_grafana_push_without_url_is_invalid_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GRAFANA_URL", raising=False)
    assert main(["grafana", "push"]) == 3
    assert "GRAFANA_URL" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run"], ["nosuchverb"], ["run", "--bogus", "x.yaml"], []])
def test_a_wrong_command_line_is_invalid_input(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 3  # invalid input, not 2 ("could not be judged")
    assert "error:" in capsys.readouterr().err
