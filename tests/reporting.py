"""Collects the outcome of every test marked ``@pytest.mark.matrix(section, row, column,
expect=...)`` into ``test-artifacts/reliability.json``; ``scripts/reliability-report``
renders docs/RELIABILITY.md and the attack list of docs/SECURITY.md from it.

Sections: ``faults`` (row = component, column = fault), ``crashes`` (row = phase),
``inputs`` (row = what was fed in), ``attacks`` (row = the attack, column = the defence area).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "test-artifacts" / "reliability.json"
SECTIONS = ("faults", "crashes", "inputs", "attacks")

_cases: dict[str, dict] = {}
_started = time.time()


def _marker_case(item) -> dict | None:
    mark = item.get_closest_marker("matrix")
    if mark is None:
        return None
    args = list(mark.args) + [None] * 3
    section = mark.kwargs.get("section", args[0])
    row = mark.kwargs.get("row", args[1])
    column = mark.kwargs.get("column", args[2]) or ""
    if section not in SECTIONS or not row:
        raise pytest.UsageError(f"{item.nodeid}: matrix marker needs section in {SECTIONS} and a row")
    return {"nodeid": item.nodeid, "section": section, "row": row, "column": column,
            "expect": mark.kwargs.get("expect", ""), "slow": item.get_closest_marker("slow") is not None,
            "outcome": "not run", "duration": 0.0}


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        case = _marker_case(item)
        if case:
            _cases[item.nodeid] = case


def pytest_runtest_logreport(report):
    case = _cases.get(report.nodeid)
    if case is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        case["outcome"] = outcome
        case["duration"] = round(case["duration"] + report.duration, 2)
    elif report.when == "teardown" and report.outcome == "failed":
        case["outcome"] = "failed"


def pytest_sessionfinish(session, exitstatus):
    if not _cases or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "started_at": _started, "finished_at": time.time(),
        "whole_suite": (session.config.args_source == pytest.Config.ArgsSource.TESTPATHS
                        and not session.config.option.keyword and not session.config.option.markexpr),
        "cases": sorted(_cases.values(), key=lambda c: (SECTIONS.index(c["section"]), c["row"], c["column"], c["nodeid"])),
    }, indent=1) + "\n")
