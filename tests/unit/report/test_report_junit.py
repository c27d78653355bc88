"""JUnit XML export: structure CI reporters expect, counts, failure text, escaping."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report.junit import junit_xml, write_junit

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "journal_sample.json"


@pytest.fixture()
def journal() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def _suite(xml_text: str) -> ET.Element:
    root = ET.fromstring(xml_text.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return suites[0]


def test_structure_and_counts(journal: dict) -> None:
    text = junit_xml(journal)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(text.encode("utf-8"))
    suite = _suite(text)
    assert suite.get("name") == "harness.ha"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [a["name"] for a in journal["assertions"]]
    assert all(c.get("classname") == "harness.ha" for c in cases)
    assert all(float(c.get("time", "x")) >= 0 for c in cases)
    # fixture: 4 passed, 1 failed, 1 inconclusive (-> error)
    for el in (root, suite):
        assert el.get("tests") == "6"
        assert el.get("failures") == "1"
        assert el.get("errors") == "1"
        assert el.get("skipped") == "0"
    assert len(suite.findall("testcase/failure")) == 1
    assert len(suite.findall("testcase/error")) == 1
    assert float(suite.get("time", "0")) == pytest.approx(
        journal["ended_at"] - journal["started_at"], abs=0.01
    )
    assert suite.get("timestamp", "").startswith("2026-")


def test_properties(journal: dict) -> None:
    suite = _suite(junit_xml(journal))
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props["run_id"] == journal["run_id"]
    assert props["topology"] == "ha"
    assert props["status"] == "failed"


def test_failure_text_has_measured_bound_window_and_promql(journal: dict) -> None:
    suite = _suite(junit_xml(journal))
    failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["p95_latency_under_redis_latency"]
    failure = failed[0].find("failure")
    assert failure is not None
    assert failure.get("message") == "p95 latency 268 ms exceeded 250 ms"
    body = failure.text or ""
    assert "measured:  0.2681 s" in body
    assert "bound:     0.25 s" in body
    assert "during:    fault:latency redis +200ms" in body
    assert journal["assertions"][3]["promql"] in body


def test_inconclusive_and_error_become_error_elements(journal: dict) -> None:
    journal["assertions"][0]["status"] = "error"
    journal["assertions"][0]["message"] = "prometheus unreachable"
    suite = _suite(junit_xml(journal))
    errors = {c.get("name"): c.find("error") for c in suite.findall("testcase")}
    assert errors["session_continuity"] is not None
    assert errors["session_continuity"].get("message") == "prometheus unreachable"
    assert errors["writes_durable"] is not None
    assert errors["writes_durable"].get("type") == "Inconclusive"
    assert "measured:  n/a" in (errors["writes_durable"].text or "")
    assert suite.get("errors") == "2" and suite.get("failures") == "1"


def test_escaping_of_markup_in_names_and_messages(journal: dict) -> None:
    nasty = 'p95 <under> "load" & faults'
    journal["assertions"][3]["name"] = nasty
    journal["assertions"][3]["message"] = '<b>bad</b> & "quoted" \x1b[31mred\x1b[0m'
    journal["assertions"][3]["promql"] = 'rate(x{run="a"}[1m]) > 0 & < 1'
    journal["topology"] = 'ha<&">'
    text = junit_xml(journal)
    assert "<under>" not in text and "<b>" not in text
    suite = _suite(text)  # parses: well-formed despite <&" and a control character
    assert suite.get("name") == 'harness.ha<&">'
    case = [c for c in suite.findall("testcase") if c.get("name") == nasty]
    assert len(case) == 1
    failure = case[0].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith('<b>bad</b> & "quoted"')
    assert 'rate(x{run="a"}[1m]) > 0 & < 1' in (failure.text or "")


def test_minimal_journal_without_optional_keys() -> None:
    journal = {
        "run_id": "r1",
        "status": "passed",
        "assertions": [{"name": "only", "status": "passed"}],
    }
    suite = _suite(junit_xml(journal))
    assert suite.get("name") == "harness.unknown"
    assert suite.get("tests") == "1" and suite.get("failures") == "0"
    assert suite.get("time") == "0.000"


def test_errored_run_without_assertions_is_not_green() -> None:
    journal = {
        "run_id": "r2",
        "status": "error",
        "exit_code": 3,
        "topology": "single",
        "assertions": [],
        "phases": [{"name": "build", "started_at": 1.0, "ended_at": 2.0, "status": "failed"}],
    }
    suite = _suite(junit_xml(journal))
    assert suite.get("tests") == "1" and suite.get("errors") == "1"
    err = suite.find("testcase/error")
    assert err is not None
    assert "exit code 3" in err.get("message", "")
    assert "build" in err.get("message", "")


def test_failed_run_with_failed_assertion_has_no_synthetic_case(journal: dict) -> None:
    suite = _suite(junit_xml(journal))
    assert "harness run" not in [c.get("name") for c in suite.findall("testcase")]


def test_write_junit(tmp_path: Path, journal: dict) -> None:
    out = write_junit(copy.deepcopy(journal), tmp_path / "sub" / "junit.xml")
    assert out.exists()
    assert _suite(out.read_text(encoding="utf-8")).get("tests") == "6"
