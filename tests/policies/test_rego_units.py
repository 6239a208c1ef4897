"""The Rego unit tests (``policies/datause/*_test.rego``) pass on OPA.

They override ``input`` and ``data`` with ``with``, which crashes regopy, so they run only
where an ``opa`` binary is on PATH, and skip with that reason elsewhere, CI included (the
decision table covers regopy). ``run_rego_unit_tests`` is the same call ``datatrust policy
test`` makes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from datatrust.policies._table import run_rego_unit_tests

POLICY_DIR = Path(__file__).parents[2] / "policies" / "datause"
needs_opa = pytest.mark.skipif(
    shutil.which("opa") is None, reason="no opa binary on PATH to run the Rego unit tests"
)


@needs_opa
def test_the_rego_unit_tests_pass_on_opa() -> None:
    run = run_rego_unit_tests(POLICY_DIR)
    assert (run.ran, run.passed, run.reason_if_not_run) == (True, True, ""), run.output
    assert run.count >= 20, run.output
    assert "FAIL" not in run.output


@needs_opa
def test_a_failing_rego_test_is_reported_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "sums_test.rego").write_text(
        "package sums_test\n\ntest_adds if 1 + 1 == 2\n\ntest_wrong if 1 + 1 == 3\n",
        encoding="utf-8",
    )
    run = run_rego_unit_tests(tmp_path)
    assert (run.ran, run.passed, run.count) == (True, False, 2)
    assert "FAIL data.sums_test.test_wrong" in run.output


@needs_opa
def test_a_rego_syntax_error_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "broken_test.rego").write_text("package broken\n\ntest_x if {\n", "utf-8")
    run = run_rego_unit_tests(tmp_path)
    assert (run.ran, run.passed) == (True, False)
    assert "broken_test.rego" in run.output


def test_without_opa_the_run_says_why_it_did_not_run(tmp_path: Path) -> None:
    run = run_rego_unit_tests(POLICY_DIR, opa=str(tmp_path / "no-such-opa"))
    assert (run.ran, run.passed) == (False, False)
    assert run.reason_if_not_run.startswith("opa test could not run")


def test_a_directory_without_rego_is_not_a_pass(tmp_path: Path) -> None:
    run = run_rego_unit_tests(tmp_path, opa="opa")
    assert (run.ran, run.passed, run.reason_if_not_run) == (
        False,
        False,
        f"no Rego files in {tmp_path}",
    )
