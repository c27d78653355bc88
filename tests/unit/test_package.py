"""Packaging drift: the version is written once (harness.__version__, which pyproject.toml and
the journal read), and the `py.typed` marker pyproject.toml ships exists."""

from __future__ import annotations

import importlib.metadata
import json
import tomllib
from pathlib import Path

import harness
from harness.journal import Journal

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "harness.__version__"}
    assert importlib.metadata.version("harness") == harness.__version__


def test_the_journal_records_the_package_version(tmp_path: Path) -> None:
    Journal(tmp_path, "r1", "t", "t.yaml")
    data = json.loads((tmp_path / "journal.json").read_text())
    assert data["harness_version"] == harness.__version__


def test_py_typed_ships_with_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["harness"]
    assert (ROOT / "harness" / "py.typed").is_file()
