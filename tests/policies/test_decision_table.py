"""The decision table: inputs and the exact decisions the data-use Rego must give.

Replayed against embedded regopy in every run, and against ``opa eval`` (plus ``opa test``
for the Rego unit tests) where an ``opa`` binary is on PATH. CI has no ``opa``, so there the
OPA half skips; a difference between the engines is a failing test, never a tolerance.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from datatrust.policies._engines import Decision, EmbeddedRegoEngine, Obligations
from datatrust.policies.documents import demo_agreements, demo_register, rego_data

POLICY_DIR = Path(__file__).parents[2] / "policies" / "datause"
TABLE = json.loads((Path(__file__).parent / "decision_table.json").read_text(encoding="utf-8"))
CASES = TABLE["cases"]
OPA = shutil.which("opa")
needs_opa = pytest.mark.skipif(OPA is None, reason="no opa binary on PATH (CI has none)")


@pytest.fixture(scope="module")
def documents() -> dict:
    return rego_data(demo_register(), demo_agreements())


@pytest.fixture(scope="module")
def engine(documents: dict) -> EmbeddedRegoEngine:
    return EmbeddedRegoEngine(POLICY_DIR, documents)


def test_the_table_holds_enough_distinct_cases_of_both_outcomes() -> None:
    names = [case["name"] for case in CASES]
    outcomes = [case["expected"]["allow"] for case in CASES]
    assert (len(names) >= 25, len(set(names)) == len(names)) == (True, True)
    assert (outcomes.count(True) >= 10, outcomes.count(False) >= 10) == (True, True)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_regopy_gives_the_tables_decision(engine: EmbeddedRegoEngine, case: dict) -> None:
    assert engine.decide(case["input"]).as_dict() == case["expected"]


@needs_opa
@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_opa_gives_the_tables_decision(documents: dict, case: dict, tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"documents": documents}), encoding="utf-8")
    given = tmp_path / "input.json"
    given.write_text(json.dumps(case["input"]), encoding="utf-8")
    result = subprocess.run(
        [OPA, "eval", "--format", "json", "-d", str(POLICY_DIR / "decision.rego"),
         "-d", str(data), "-i", str(given), "data.datause.decision.decision"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    value = json.loads(result.stdout)["result"][0]["expressions"][0]["value"]
    assert Decision.from_value(value).as_dict() == case["expected"]


@needs_opa
def test_the_rego_unit_tests_pass_on_opa() -> None:
    result = subprocess.run(
        [OPA, "test", str(POLICY_DIR)], capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_threads_each_get_their_own_interpreter_and_agree(engine: EmbeddedRegoEngine) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda case: engine.decide(case["input"]).as_dict(), CASES * 4))
    assert results == [case["expected"] for case in CASES * 4]


def _write_policy(directory: Path, source: str) -> Path:
    directory.mkdir()
    (directory / "decision.rego").write_text(source, encoding="utf-8")
    return directory


def test_a_policy_that_does_not_compile_denies_every_request(tmp_path: Path) -> None:
    policy = _write_policy(tmp_path / "bad", "package datause.decision\n\ndecision := \n")
    engine = EmbeddedRegoEngine(policy, {"policy_version": "v9"})
    assert (engine.compiled, engine.decide(CASES[0]["input"])) == (
        False,
        Decision(
            allow=False,
            reasons=("the data-use policy did not compile (RegoError)",),
            policy_version="v9",
        ),
    )


def test_an_undefined_decision_is_a_deny(tmp_path: Path) -> None:
    source = 'package datause.decision\n\ndecision := {"allow": true} if input.never\n'
    engine = EmbeddedRegoEngine(_write_policy(tmp_path / "undefined", source), {})
    assert engine.decide({"purpose": "research"}) == Decision.deny(
        "the data-use policy gave no decision"
    )


@pytest.mark.parametrize(
    "value",
    ['"allow"', '{"allow": true}', "[true]", "true"],
    ids=["a string", "an object missing keys", "an array", "a bare true"],
)
def test_a_decision_that_is_not_the_decision_object_is_a_deny(tmp_path: Path, value: str) -> None:
    source = f"package datause.decision\n\ndecision := {value}\n"
    engine = EmbeddedRegoEngine(_write_policy(tmp_path / "odd", source), {"policy_version": "v2"})
    assert engine.decide({}) == Decision(
        allow=False,
        reasons=("the data-use policy could not be evaluated (ValueError)",),
        policy_version="v2",
        obligations=Obligations(),
    )


def test_an_input_that_is_not_json_is_a_deny(engine: EmbeddedRegoEngine) -> None:
    decision = engine.decide({"purpose": {1, 2}})  # a set: json.dumps refuses it
    assert decision.as_dict()["reasons"] == [
        "the data-use policy could not be evaluated (TypeError)"
    ]
    assert decision.allow is False
