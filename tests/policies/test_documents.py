"""The trust documents: schema and meaning checks, and the view the Rego decides from."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from datatrust.policies.documents import (
    DocumentProblem,
    demo_agreements,
    demo_register,
    rego_data,
    validate_documents,
)


@pytest.fixture
def register() -> dict[str, Any]:
    return demo_register()


@pytest.fixture
def agreements() -> dict[str, Any]:
    return demo_agreements()


def _research_copy(agreements: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A second research agreement between the same parties, differing by ``changes``."""
    twin = copy.deepcopy(agreements["agreements"][1])
    twin.update({"id": "dsa-research-twin", **changes})
    return twin


def test_the_demo_register_and_agreements_are_valid(register: dict, agreements: dict) -> None:
    assert validate_documents(register, agreements) == []


def test_schema_errors_name_the_json_path(register: dict, agreements: dict) -> None:
    first = agreements["agreements"][0]
    first["status"] = "live"
    del first["title"]
    first["disclosure"]["rounding_base"] = 0
    assert validate_documents(register, agreements) == [
        DocumentProblem("agreements", "$.agreements[0]", "'title' is a required property"),
        DocumentProblem(
            "agreements",
            "$.agreements[0].disclosure.rounding_base",
            "0 is less than the minimum of 1",
        ),
        DocumentProblem(
            "agreements",
            "$.agreements[0].status",
            "'live' is not one of ['draft', 'active', 'suspended', 'ended']",
        ),
    ]


def test_a_register_schema_error_is_reported(register: dict, agreements: dict) -> None:
    register["purposes"][0]["dpv"] = "ServiceProvision"
    assert validate_documents(register, agreements) == [
        DocumentProblem(
            "purpose register",
            "$.purposes[0].dpv",
            "'ServiceProvision' does not match '^(dpv|datatrust):[A-Za-z]+$'",
        )
    ]


def test_an_unknown_purpose_is_refused(register: dict, agreements: dict) -> None:
    agreements["agreements"][1]["purposes"] = ["research", "marketing"]
    assert validate_documents(register, agreements) == [
        DocumentProblem("agreements", "$.agreements[1].purposes[1]", "unknown purpose 'marketing'")
    ]


def test_an_agreement_that_ends_before_it_starts_is_refused(
    register: dict, agreements: dict
) -> None:
    agreements["agreements"][0]["end"] = "2025-12-31"
    assert validate_documents(register, agreements) == [
        DocumentProblem("agreements", "$.agreements[0].end", "the agreement ends before it starts")
    ]


def test_an_impossible_date_is_refused(register: dict, agreements: dict) -> None:
    agreements["agreements"][0]["start"] = "2026-02-30"
    assert validate_documents(register, agreements) == [
        DocumentProblem("agreements", "$.agreements[0].start", "'2026-02-30' is no date")
    ]


def test_health_data_without_an_article_9_condition_is_refused(
    register: dict, agreements: dict
) -> None:
    agreements["agreements"][1]["lawful_basis"]["article_9"] = None
    assert validate_documents(register, agreements) == [
        DocumentProblem(
            "agreements",
            "$.agreements[1].lawful_basis.article_9",
            "health or care data needs an Art. 9 condition",
        )
    ]


def test_a_reused_agreement_id_is_refused(register: dict, agreements: dict) -> None:
    agreements["agreements"].append(copy.deepcopy(agreements["agreements"][2]))
    assert validate_documents(register, agreements) == [
        DocumentProblem(
            "agreements",
            "$.agreements[4].id",
            "id 'dsa-safeguarding-referrals' is used more than once",
        )
    ]


def test_one_field_with_two_forms_in_one_agreement_is_refused(
    register: dict, agreements: dict
) -> None:
    dataset = agreements["agreements"][0]["datasets"][1]
    dataset["fields"].append({"field": "Area.encounterCount", "output": "identifiable"})
    assert validate_documents(register, agreements) == [
        DocumentProblem(
            "agreements",
            "$.agreements[0].datasets[1].fields[2]",
            "field Area.encounterCount at node 'health' is given two output forms "
            "(aggregate-only and identifiable)",
        )
    ]


def test_contradicting_active_agreements_are_refused(register: dict, agreements: dict) -> None:
    twin = _research_copy(agreements, start="2028-01-01", end="2030-12-31")
    twin["datasets"][0]["fields"][3]["output"] = "identifiable"  # Person.areaCode, masked in 1
    agreements["agreements"].append(twin)
    assert validate_documents(register, agreements) == [
        DocumentProblem(
            "agreements",
            "$.agreements[4]",
            "contradicts active agreement 'dsa-research-cohort' (agreement $.agreements[1]) for "
            "purpose 'research': dataset 'health-encounters' field Person.areaCode is masked in "
            "one and identifiable in the other",
        )
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "suspended"},
        {"start": "2029-04-01", "end": "2030-03-31"},
        {"parties": [{"agency": "health", "role": "controller"}]},
        {"purposes": ["official-statistics"]},
    ],
    ids=["one is suspended", "their periods do not overlap", "other parties", "other purposes"],
)
def test_differing_agreements_that_cannot_both_bind_are_accepted(
    register: dict, agreements: dict, changes: dict
) -> None:
    twin = _research_copy(agreements, **changes)
    twin["datasets"][0]["fields"][3]["output"] = "identifiable"
    agreements["agreements"].append(twin)
    assert validate_documents(register, agreements) == []


def test_a_problem_reads_as_document_path_and_message() -> None:
    problem = DocumentProblem(
        "agreements", "$.agreements[0].end", "the agreement ends before it starts"
    )
    assert str(problem) == "agreements $.agreements[0].end: the agreement ends before it starts"


def test_the_rego_view_indexes_forms_and_gives_dates_in_nanoseconds(
    register: dict, agreements: dict
) -> None:
    view = rego_data(register, agreements)
    assert (view["policy_version"], view["purposes"], sorted(view["agreements"])) == (
        "agreements 2026-11-26, purposes 2026-11-01",
        sorted(purpose["id"] for purpose in register["purposes"]),
        [
            "dsa-direct-care",
            "dsa-planning-area-statistics",
            "dsa-research-cohort",
            "dsa-safeguarding-referrals",
        ],
    )
    assert view["agreements"]["dsa-research-cohort"] == {
        "id": "dsa-research-cohort",
        "version": "1.0",
        "status": "active",
        "agencies": ["health", "social-care", "university"],
        "purposes": ["research"],
        "recipient_roles": ["researcher"],
        "forms": {
            "health": {
                "Person.pseudonym": "pseudonymised",
                "Person.birthYear": "identifiable",
                "Person.gender": "identifiable",
                "Person.areaCode": "masked",
                "Person.encounters": "identifiable",
                "Encounter.start": "identifiable",
                "Encounter.classCode": "identifiable",
                "Area.code": "identifiable",
                "Area.encounterCount": "aggregate-only",
            },
            "social-care": {
                "Person.pseudonym": "pseudonymised",
                "Person.careEpisodes": "identifiable",
                "CareEpisode.eventType": "identifiable",
                "CareEpisode.serviceType": "identifiable",
                "CareEpisode.start": "identifiable",
                "Area.code": "identifiable",
                "Area.openCareEpisodes": "aggregate-only",
            },
        },
        "disclosure": {"min_cell_size": 10, "rounding_base": 5},
        "consent_required": True,
        "national_data_opt_out_applies": True,
        "start": "2026-04-01",
        "end": "2029-03-31",
        "start_ns": 1_775_001_600_000_000_000,  # 2026-04-01T00:00:00Z
        "end_ns": 1_869_696_000_000_000_000,  # 2029-04-01T00:00:00Z, the day after the end
    }
