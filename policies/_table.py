"""The decision table and the Rego unit tests, as checks any tool can run against an engine.

The table is the contract between the engines: inputs and the exact decisions the data-use
Rego gives for them, recorded from a real OPA server. The test suite replays it on regopy
every run and on OPA where one is at hand; the DPO's ``policy test`` replays it on whichever
engine a node is configured with. A difference is a failure, never a tolerance.

The table carries its own purpose register and agreements (the demo trust's as they were when
it was recorded, plus overlapping and suspended agreements the demo trust does not have), so
it exercises every rule of the Rego and editing a trust's documents never changes it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from datatrust.policies._engines import Decision, PolicyEngine

__all__ = [
    "RegoTestRun",
    "TableMismatch",
    "check_decision_table",
    "decision_table_documents",
    "decision_table_path",
    "load_decision_table",
    "run_rego_unit_tests",
]


def decision_table_path() -> Path:
    """The shipped table (``policies/datause/decision_table.json``, package data)."""
    return Path(str(resources.files("datatrust.policies").joinpath("datause/decision_table.json")))


def _read_table(path: Path) -> dict[str, Any]:
    try:
        table = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"the decision table {path} cannot be read: {error}") from error
    if not isinstance(table, dict) or not isinstance(table.get("cases"), list):
        raise ValueError(f"the decision table {path} has no list of cases")
    return table


def load_decision_table(path: Path | None = None) -> list[dict[str, Any]]:
    """The table's cases (``name``, ``input``, ``expected``), each checked for shape.

    A case whose expected value is not a well-formed decision, or a repeated name, is a
    ``ValueError`` naming the case, so a damaged table cannot pass by comparing nothing.
    """
    path = decision_table_path() if path is None else Path(path)
    cases = _read_table(path)["cases"]
    names: set[str] = set()
    for index, case in enumerate(cases):
        where = f"{path}: case {index}"
        if not isinstance(case, dict) or set(case) != {"name", "input", "expected"}:
            raise ValueError(f"{where} is not an object with name, input and expected")
        if not isinstance(case["name"], str) or case["name"] in names:
            raise ValueError(f"{where} has a missing or repeated name {case['name']!r}")
        names.add(case["name"])
        try:
            Decision.from_value(case["expected"])
        except ValueError as error:
            raise ValueError(f"{where} ({case['name']}): expected {error}") from error
    return cases


def decision_table_documents(path: Path | None = None) -> dict[str, Any]:
    """``data.documents`` for the table: its own register and agreements, validated like any
    published documents, then in the Rego's view."""
    from datatrust.policies.documents import rego_data, validate_documents

    path = decision_table_path() if path is None else Path(path)
    table = _read_table(path)
    register, agreements = table.get("register"), table.get("agreements")
    if not isinstance(register, dict) or not isinstance(agreements, dict):
        raise ValueError(f"the decision table {path} lacks its register and agreements")
    problems = validate_documents(register, agreements)
    if problems:
        raise ValueError(f"the decision table's documents are invalid: {problems[0]}")
    return rego_data(register, agreements)


@dataclass(frozen=True, slots=True)
class TableMismatch:
    """A case the engine decided differently from the table (both as the Rego's JSON)."""

    name: str
    expected: dict[str, Any]
    got: dict[str, Any]


def check_decision_table(engine: PolicyEngine, cases: list[dict[str, Any]]) -> list[TableMismatch]:
    """Every case the engine decides differently from the table; empty means it agrees."""
    mismatches = []
    for case in cases:
        got = engine.decide(case["input"]).as_dict()
        if got != case["expected"]:
            mismatches.append(TableMismatch(case["name"], case["expected"], got))
    return mismatches


@dataclass(frozen=True, slots=True)
class RegoTestRun:
    """The outcome of ``opa test`` on the policy's ``*_test.rego`` files.

    ``ran`` is false where no ``opa`` binary exists (regopy cannot run these tests: their
    ``with`` overrides crash it), and ``reason_if_not_run`` then says so. ``count`` is how
    many tests OPA ran; ``output`` is one line per test and a summary, for a person.
    """

    ran: bool
    passed: bool
    output: str
    reason_if_not_run: str = ""
    count: int = 0


def run_rego_unit_tests(
    policy_dir: Path, opa: str | None = None, timeout: float = 120.0
) -> RegoTestRun:
    """Run ``opa test`` over the Rego files of ``policy_dir`` (the binary on PATH, or ``opa``).

    Only the ``.rego`` files are given to OPA: the directory also ships the decision table,
    which must not become ``data`` for the tests. Passing means OPA exited cleanly, ran at
    least one test, and reported no failure and no error.
    """
    binary = opa or shutil.which("opa")
    if binary is None:
        return RegoTestRun(False, False, "", "no opa binary on PATH to run the Rego unit tests")
    files = sorted(str(path) for path in Path(policy_dir).glob("*.rego"))
    if not files:
        return RegoTestRun(False, False, "", f"no Rego files in {policy_dir}")
    try:
        done = subprocess.run(
            [binary, "test", "--format", "json", *files],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return RegoTestRun(False, False, "", f"opa test could not run: {error}")
    try:
        results = json.loads(done.stdout) if done.stdout.strip() else []
    except ValueError:
        results = None
    if not isinstance(results, list):
        output = (done.stdout + done.stderr).strip()
        return RegoTestRun(True, False, output or f"opa test exited {done.returncode}")
    lines, failed = [], 0
    for result in results:
        name = f"{result.get('package', '?')}.{result.get('name', '?')}"
        if result.get("fail") or result.get("error"):
            failed += 1
            detail = f": {result['error']}" if result.get("error") else ""
            lines.append(f"FAIL {name}{detail}")
        else:
            lines.append(f"PASS {name}")
    lines.append(f"{len(results) - failed}/{len(results)} Rego tests passed")
    if done.stderr.strip():
        lines.append(done.stderr.strip())
    passed = done.returncode == 0 and failed == 0 and len(results) > 0
    return RegoTestRun(True, passed, "\n".join(lines), "", len(results))
