"""The decision table: inputs and the exact decisions the data-use Rego must give.

The expected decisions were recorded from a real OPA server. The table replays against
embedded regopy in every run, and against a live OPA server through ``OpaEngine`` where an
``opa`` binary is on PATH or ``DATATRUST_OPA_URL`` is set (skipping, with that reason,
elsewhere, CI included). A difference between the engines is a failing test, never a
tolerance.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from datatrust.policies._engines import (
    Decision,
    EmbeddedRegoEngine,
    Obligations,
    OpaEngine,
    create_policy_engine,
)
from datatrust.policies._table import (
    check_decision_table,
    decision_table_documents,
    decision_table_path,
    load_decision_table,
)
from tests.policies._opa_server import NO_OPA, OPA, OPA_URL, started_opa

POLICY_DIR = Path(__file__).parents[2] / "policies" / "datause"
CASES = load_decision_table()
IDS = [case["name"] for case in CASES]


@pytest.fixture(scope="module")
def documents() -> dict:
    return decision_table_documents()


@pytest.fixture(scope="module")
def engine(documents: dict) -> EmbeddedRegoEngine:
    return EmbeddedRegoEngine(POLICY_DIR, documents)


@pytest.fixture(scope="module")
def opa_engine(documents: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpaEngine]:
    if OPA_URL:
        url_engine = OpaEngine(POLICY_DIR, documents, OPA_URL, namespace="datatrust-table")
        yield url_engine
        url_engine.close()
        return
    if OPA is None:
        pytest.skip(NO_OPA)
    with started_opa(tmp_path_factory.mktemp("opa") / "opa.log") as url:
        started = OpaEngine(POLICY_DIR, documents, url, namespace="datatrust-table")
        yield started
        started.close()


def test_the_shipped_table_is_the_one_replayed() -> None:
    assert decision_table_path() == POLICY_DIR / "decision_table.json"


def test_the_table_holds_enough_distinct_cases_of_both_outcomes() -> None:
    inputs = {json.dumps(case["input"], sort_keys=True) for case in CASES}
    outcomes = Counter(case["expected"]["allow"] for case in CASES)
    assert (len(CASES) >= 40, len(inputs) == len(CASES)) == (True, True)
    assert (outcomes[True] >= 15, outcomes[False] >= 20) == (True, True)


def test_the_table_covers_every_obligation_and_several_agreements() -> None:
    allowed = [case["expected"] for case in CASES if case["expected"]["allow"]]
    filters = Counter(f["kind"] for d in allowed for f in d["obligations"]["row_filters"])
    assert {kind for kind, n in filters.items() if n >= 2} == {
        "consent",
        "national_data_opt_out",
        "agreement_period",
    }
    assert any(d["obligations"]["mask"] for d in allowed)
    assert any(d["obligations"]["pseudonymise"] for d in allowed)
    shapes = {(d["obligations"]["min_cell"], d["obligations"]["round_to"]) for d in allowed}
    assert len(shapes) >= 2
    assert len({d["agreement"] for d in allowed}) >= 3


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_regopy_gives_the_tables_decision(engine: EmbeddedRegoEngine, case: dict) -> None:
    assert engine.decide(case["input"]).as_dict() == case["expected"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_opa_gives_the_tables_decision(opa_engine: OpaEngine, case: dict) -> None:
    assert opa_engine.decide(case["input"]).as_dict() == case["expected"]


def test_the_whole_table_agrees_on_both_engines_through_the_shared_check(
    engine: EmbeddedRegoEngine, opa_engine: OpaEngine
) -> None:
    assert (check_decision_table(engine, CASES), check_decision_table(opa_engine, CASES)) == (
        [],
        [],
    )


def test_the_factory_builds_either_engine(documents: dict) -> None:
    embedded = create_policy_engine("embedded", POLICY_DIR, documents)
    assert check_decision_table(embedded, CASES[:5]) == []
    with pytest.raises(ValueError, match="unknown policy engine 'wasm'"):
        create_policy_engine("wasm", POLICY_DIR, documents)


def test_a_table_check_names_each_case_an_engine_gets_wrong(engine: EmbeddedRegoEngine) -> None:
    altered = [{**CASES[0], "expected": {**CASES[0]["expected"], "allow": False}}, CASES[1]]
    [mismatch] = check_decision_table(engine, altered)
    assert (mismatch.name, mismatch.got) == (CASES[0]["name"], CASES[0]["expected"])


def test_threads_each_get_their_own_interpreter_and_agree(engine: EmbeddedRegoEngine) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda case: engine.decide(case["input"]).as_dict(), CASES * 3))
    assert results == [case["expected"] for case in CASES * 3]


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
            failed=True,
        ),
    )


def test_an_undefined_decision_is_a_deny(tmp_path: Path) -> None:
    source = 'package datause.decision\n\ndecision := {"allow": true} if input.never\n'
    engine = EmbeddedRegoEngine(_write_policy(tmp_path / "undefined", source), {})
    assert engine.decide({"purpose": "research"}) == Decision.failure(
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
        failed=True,
    )


def test_an_input_that_is_not_json_is_a_deny(engine: EmbeddedRegoEngine) -> None:
    decision = engine.decide({"purpose": {1, 2}})  # a set: json.dumps refuses it
    assert decision.as_dict()["reasons"] == [
        "the data-use policy could not be evaluated (TypeError)"
    ]
    assert decision.allow is False
