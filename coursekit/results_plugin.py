"""A tiny pytest plugin that writes one JSON record per test.

``coursekit`` runs exercise tests in a subprocess (so a learner's broken
module can never crash the notebook kernel) and reads this file back. JSON
rather than JUnit XML because we want each test's docstring: it says, in plain
words, what the test expects.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

RESULTS_ENV = "COURSEKIT_RESULTS"
_records: list[dict[str, Any]] = []


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _explain(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return _first_line(str(report.longrepr)) if report.longrepr else ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    function = getattr(item, "function", None)
    parent_class = getattr(item, "cls", None)
    report.user_properties.append(("doc", _first_line(getattr(function, "__doc__", None) or "")))
    report.user_properties.append(
        ("task_doc", _first_line(getattr(parent_class, "__doc__", None) or ""))
    )
    report.user_properties.append(
        ("markers", [marker.name for marker in item.iter_markers()])
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # One record per test: the call phase, or the setup phase when it failed or
    # skipped (then there is no call), plus any failing teardown.
    is_result = (
        report.when == "call"
        or (report.when == "setup" and not report.passed)
        or (report.when == "teardown" and report.failed)
    )
    if not is_result:
        return
    props = dict(report.user_properties)
    _records.append(
        {
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "message": _explain(report) if report.failed else "",
            "doc": props.get("doc", ""),
            "task_doc": props.get("task_doc", ""),
            "markers": props.get("markers", []),
        }
    )


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _records.append(
            {
                "nodeid": report.nodeid,
                "when": "collect",
                "outcome": "failed",
                "message": _explain(report),
                "doc": "the test file could not be imported",
                "task_doc": "",
                "markers": [],
            }
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    target = os.environ.get(RESULTS_ENV)
    if target:
        Path(target).write_text(json.dumps(_records, indent=1), encoding="utf-8")
