"""JUnit XML export of a run journal.

One ``<testsuite name="harness.<topology>">`` wrapped in a ``<testsuites>`` root (the
shape Jenkins' JUnit plugin, GitLab's ``artifacts:reports:junit`` and the GitHub test
reporters all accept), with one ``<testcase>`` per verdict assertion:

* ``passed``                   -> empty testcase
* ``failed``                   -> ``<failure message=... type="AssertionFailed">``
* ``error`` / ``inconclusive`` -> ``<error message=... type="...">``
* ``skipped``                  -> ``<skipped/>``

A run that ended in ``error`` (or that is not ``passed`` although no assertion says
why, e.g. it was interrupted before the verdict) gets one extra synthetic testcase
named ``harness run`` so that CI never shows a green suite for a broken run.

Everything except ``run_id``/``status``/``assertions`` is optional in the journal.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.journal import AssertionStatus, PhaseStatus, RunStatus

__all__ = ["junit_xml", "write_junit"]

# Characters XML 1.0 cannot carry at all (ElementTree escapes <&"> but writes these
# raw, which yields a document no parser accepts). Terminal output in assertion
# messages (ANSI escapes) is the usual source.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

_RUN_CASE = "harness run"


def _clean(value: Any) -> str:
    return _INVALID_XML.sub("\ufffd", "" if value is None else str(value))


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt_value(value: Any, unit: str) -> str:
    f = _num(value)
    if f is None:
        return "n/a" if value is None else _clean(value)
    text = f"{f:.6g}"
    return f"{text} {unit}" if unit else text


def _secs(value: float | None) -> str:
    return f"{max(value or 0.0, 0.0):.3f}"


def _assertion_text(a: dict[str, Any]) -> str:
    unit = str(a.get("unit") or "")
    lines = [
        f"assertion: {a.get('name', '?')}",
        f"kind:      {a.get('kind', '')}",
        f"status:    {a.get('status', '')}",
        f"during:    {a.get('during', '') or 'run'}",
        f"measured:  {_fmt_value(a.get('measured'), unit)}",
        f"bound:     {_fmt_value(a.get('bound'), unit)}",
    ]
    if a.get("message"):
        lines.append(f"message:   {a['message']}")
    if a.get("promql"):
        lines.append(f"promql:    {a['promql']}")
    return _clean("\n".join(lines))


def _short_message(a: dict[str, Any]) -> str:
    if a.get("message"):
        return _clean(a["message"])
    unit = str(a.get("unit") or "")
    return _clean(
        f"measured {_fmt_value(a.get('measured'), unit)} vs bound "
        f"{_fmt_value(a.get('bound'), unit)} during {a.get('during') or 'run'}"
    )


def _run_problem(journal: dict[str, Any], assertions: list[dict[str, Any]]) -> str | None:
    """Why the run itself should show up as a failing case, or None."""
    status = str(journal.get("status", ""))
    if status == RunStatus.PASSED:
        return None
    unexplained = (AssertionStatus.FAILED, AssertionStatus.ERROR, AssertionStatus.INCONCLUSIVE)
    explained = any(str(a.get("status")) in unexplained for a in assertions)
    if status != RunStatus.ERROR and explained:
        return None
    failed_phases = [
        str(p.get("name"))
        for p in journal.get("phases") or []
        if isinstance(p, dict) and p.get("status") in (PhaseStatus.FAILED, PhaseStatus.INTERRUPTED)
    ]
    why = f"run status {status or 'unknown'}"
    if journal.get("exit_code") is not None:
        why += f" (exit code {journal.get('exit_code')})"
    if failed_phases:
        why += f"; phase(s) not completed: {', '.join(failed_phases)}"
    return why


def junit_xml(journal: dict[str, Any]) -> str:
    """Render the journal's assertions as a JUnit XML document (a ``str``)."""
    topology = str(journal.get("topology") or "unknown")
    suite_name = f"harness.{topology}"
    assertions = [a for a in journal.get("assertions") or [] if isinstance(a, dict)]

    started = _num(journal.get("started_at"))
    ended = _num(journal.get("ended_at"))
    duration = (ended - started) if started is not None and ended is not None else None

    root = ET.Element("testsuites", {"name": "harness"})
    suite = ET.SubElement(root, "testsuite", {"name": _clean(suite_name)})

    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "topology", "topology_file", "harness_version", "status", "exit_code"):
        if journal.get(key) is not None:
            ET.SubElement(props, "property", {"name": key, "value": _clean(journal[key])})

    tests = failures = errors = skipped = 0
    for a in assertions:
        tests += 1
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": _clean(suite_name),
                "name": _clean(a.get("name") or a.get("kind") or f"assertion-{tests}"),
                "time": _secs(_num(a.get("elapsed_s"))),
            },
        )
        status = str(a.get("status", ""))
        if status == AssertionStatus.PASSED:
            continue
        if status == AssertionStatus.SKIPPED:
            skipped += 1
            ET.SubElement(case, "skipped", {"message": _short_message(a)})
            continue
        if status == AssertionStatus.FAILED:
            failures += 1
            el = ET.SubElement(
                case, "failure", {"message": _short_message(a), "type": "AssertionFailed"}
            )
        else:  # error, inconclusive, or anything we do not know
            errors += 1
            kind = "Inconclusive" if status == AssertionStatus.INCONCLUSIVE else "AssertionError"
            el = ET.SubElement(case, "error", {"message": _short_message(a), "type": kind})
        el.text = _assertion_text(a)

    problem = _run_problem(journal, assertions)
    if problem is not None:
        tests += 1
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": _clean(suite_name), "name": _RUN_CASE, "time": _secs(duration)},
        )
        if str(journal.get("status")) == RunStatus.FAILED:
            failures += 1
            el = ET.SubElement(case, "failure", {"message": _clean(problem), "type": "RunFailed"})
        else:
            errors += 1
            el = ET.SubElement(case, "error", {"message": _clean(problem), "type": "RunError"})
        el.text = _clean(problem)

    counts = {
        "tests": str(tests),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": _secs(duration),
    }
    suite.attrib.update(counts)
    root.attrib.update(counts)
    if started is not None:
        # JUnit's schema wants an ISO 8601 timestamp without a zone: write UTC.
        stamp = datetime.fromtimestamp(started, tz=UTC).replace(tzinfo=None)
        suite.set("timestamp", stamp.isoformat(timespec="seconds"))

    summary = journal.get("summary")
    if isinstance(summary, dict) and summary:
        out = ET.SubElement(suite, "system-out")
        out.text = _clean(
            f"run {journal.get('run_id', '?')} on {topology}: "
            + ", ".join(f"{k}={v}" for k, v in summary.items())
        )

    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def write_junit(journal: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`junit_xml` to *path* (UTF-8), creating parent directories."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(junit_xml(journal), encoding="utf-8")
    return target
