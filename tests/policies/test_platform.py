"""Platform authorisation in Polar: who may do what, refusals in words, failing closed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from datatrust.errors import AccessDenied, SettingsError
from datatrust.policies import (
    AccessLogOf,
    AgencyDocuments,
    ConsentRecordOf,
    DataQuery,
    DraftApproval,
    NodeIngest,
    OptOutList,
    PlatformActor,
    PlatformAuthorizer,
    Requester,
    platform_policy_path,
)


def staff(subject: str, agency: str | None, *roles: str, purposes=None, client=None) -> Requester:
    return Requester(
        subject=subject, agency=agency, roles=roles, purposes=purposes, client_id=client
    )


def citizen(pseudonym: str) -> PlatformActor:
    """A citizen signed in to the portal: their token names their pseudonym, no agency role."""
    return PlatformActor(
        subject=f"portal-{pseudonym}",
        agency=None,
        roles=(),
        client_id="portal",
        purposes=None,
        person=pseudonym,
    )


HEALTH_DPO = staff("alice", "health", "dpo")
HEALTH_DPO_2 = staff("bob", "health", "dpo")
COUNCIL_DPO = staff("carol", "council", "dpo")
HEALTH_CONSENT_ADMIN = staff("dan", "health", "consent-admin")
COUNCIL_CONSENT_ADMIN = staff("erin", "council", "consent-admin")
COUNCIL_OPERATOR = staff("frank", "council", "node-operator")
HEALTH_OPERATOR = staff("grace", "health", "node-operator")
COUNCIL_ANALYST = staff("heidi", "council", "analyst", purposes=("service-planning",))
HEALTH_RESEARCHER = staff("ivan", "health", "researcher", purposes=("research",))
CARE_PARTNER = staff(
    "svc-care", "social-care", "partner-system", purposes=("safeguarding",), client="care-app"
)
P1, P2 = "p-0123456789abcdef0123456789abcdef", "p-fedcba9876543210fedcba9876543210"

ALLOWED = [
    (HEALTH_DPO, "read", AgencyDocuments("health")),
    (HEALTH_DPO, "edit", AgencyDocuments("health")),
    (HEALTH_DPO, "publish", AgencyDocuments("health")),
    (HEALTH_DPO_2, "approve", DraftApproval("health", author="alice")),
    (citizen(P1), "read", ConsentRecordOf(P1, "health")),
    (citizen(P1), "give", ConsentRecordOf(P1, "health")),
    (citizen(P1), "withdraw", ConsentRecordOf(P1, "council")),
    (HEALTH_CONSENT_ADMIN, "record", ConsentRecordOf(P1, "health")),
    (HEALTH_CONSENT_ADMIN, "read", ConsentRecordOf(P1, "health")),
    (HEALTH_DPO, "revoke", ConsentRecordOf(P1, "health")),
    (citizen(P1), "read", AccessLogOf(P1, "health")),
    (COUNCIL_DPO, "read", AccessLogOf(P1, "council")),
    (COUNCIL_OPERATOR, "ingest", NodeIngest("council")),
    (COUNCIL_OPERATOR, "replay", NodeIngest("council")),
    (COUNCIL_ANALYST, "query", DataQuery("council", "service-planning")),
    (HEALTH_RESEARCHER, "query", DataQuery("health", "research")),
    (CARE_PARTNER, "query", DataQuery("social-care", "safeguarding")),
    (HEALTH_OPERATOR, "load", OptOutList("health")),
    (HEALTH_DPO, "load", OptOutList("health")),
]

REFUSED = [
    # a DPO administers only their own agency's documents
    (HEALTH_DPO, "edit", AgencyDocuments("council")),
    (HEALTH_DPO, "publish", AgencyDocuments("council")),
    (COUNCIL_ANALYST, "edit", AgencyDocuments("council")),
    (staff("nobody", None, "dpo"), "edit", AgencyDocuments("health")),
    (Requester(), "read", AgencyDocuments("health")),
    # four eyes
    (HEALTH_DPO, "approve", DraftApproval("health", author="alice")),
    (COUNCIL_DPO, "approve", DraftApproval("health", author="alice")),
    (HEALTH_CONSENT_ADMIN, "approve", DraftApproval("health", author="alice")),
    # a citizen's own consents only; staff record and revoke, citizens give and withdraw
    (citizen(P1), "read", ConsentRecordOf(P2, "health")),
    (citizen(P1), "withdraw", ConsentRecordOf(P2, "health")),
    (citizen(P1), "record", ConsentRecordOf(P1, "health")),
    (HEALTH_DPO, "give", ConsentRecordOf(P1, "health")),
    (COUNCIL_CONSENT_ADMIN, "record", ConsentRecordOf(P1, "health")),
    (COUNCIL_DPO, "revoke", ConsentRecordOf(P1, "health")),
    (COUNCIL_ANALYST, "read", ConsentRecordOf(P1, "council")),
    # access logs
    (citizen(P1), "read", AccessLogOf(P2, "health")),
    (COUNCIL_DPO, "read", AccessLogOf(P1, "health")),
    (HEALTH_RESEARCHER, "read", AccessLogOf(P1, "health")),
    # ingest and the opt-out list
    (HEALTH_OPERATOR, "ingest", NodeIngest("council")),
    (COUNCIL_ANALYST, "ingest", NodeIngest("council")),
    (COUNCIL_OPERATOR, "load", OptOutList("health")),
    (HEALTH_RESEARCHER, "load", OptOutList("health")),
    # queries: own agency, token's purposes, real partner systems only
    (COUNCIL_ANALYST, "query", DataQuery("health", "service-planning")),
    (COUNCIL_ANALYST, "query", DataQuery("council", "research")),
    (staff("judy", "council", "analyst"), "query", DataQuery("council", "research")),
    (CARE_PARTNER, "query", DataQuery("health", "safeguarding")),
    (
        staff("svc-x", "social-care", "partner-system", purposes=("safeguarding",)),
        "query",
        DataQuery("social-care", "safeguarding"),
    ),
    (citizen(P1), "query", DataQuery("health", "research")),
    (HEALTH_DPO, "query", DataQuery("health", "research")),
    # a partner system never holds an administrative role, whatever its token lists
    (
        staff("svc-care", "social-care", "partner-system", "dpo", client="care-app"),
        "edit",
        AgencyDocuments("social-care"),
    ),
    (
        staff("svc-care", "social-care", "partner-system", "node-operator", client="care-app"),
        "ingest",
        NodeIngest("social-care"),
    ),
]


def _case_id(case) -> str:
    actor, action, resource = case
    return f"{getattr(actor, 'subject', '?')}-{action}-{resource!r}"


@pytest.fixture(scope="module")
def authorizer() -> PlatformAuthorizer:
    authorizer = PlatformAuthorizer()
    authorizer.check()
    return authorizer


def test_the_table_has_enough_cases_to_mean_something() -> None:
    assert len(ALLOWED) + len(REFUSED) >= 25
    assert len(REFUSED) > len(ALLOWED)


@pytest.mark.parametrize("case", ALLOWED, ids=_case_id)
def test_allowed(authorizer: PlatformAuthorizer, case) -> None:
    actor, action, resource = case
    assert authorizer.is_allowed(actor, action, resource) is True
    authorizer.authorize(actor, action, resource)


@pytest.mark.parametrize("case", REFUSED, ids=_case_id)
def test_refused(authorizer: PlatformAuthorizer, case) -> None:
    actor, action, resource = case
    assert authorizer.is_allowed(actor, action, resource) is False
    with pytest.raises(AccessDenied, match=r"^access denied: .* may not "):
        authorizer.authorize(actor, action, resource)


def test_the_author_of_a_draft_is_told_a_second_dpo_must_approve(authorizer) -> None:
    with pytest.raises(AccessDenied) as refused:
        authorizer.authorize(HEALTH_DPO, "approve", DraftApproval("health", author="alice"))
    assert refused.value.message == (
        "access denied: dpo 'alice' of agency 'health' may not approve the draft by 'alice' "
        "of agency 'health'; a draft needs approval by a second DPO of the same agency, "
        "not its author"
    )
    assert refused.value.details == {"action": "approve", "resource": "DraftApproval"}
    assert refused.value.status_hint == 403


def test_a_cross_agency_refusal_names_both_agencies(authorizer) -> None:
    with pytest.raises(AccessDenied) as refused:
        authorizer.authorize(HEALTH_DPO, "edit", AgencyDocuments("council"))
    assert refused.value.message == (
        "access denied: dpo 'alice' of agency 'health' may not edit the agreements and purpose "
        "entries of agency 'council'; only a DPO of that agency may edit them"
    )


def test_a_citizen_refusal_names_whose_records_they_are(authorizer) -> None:
    with pytest.raises(AccessDenied) as refused:
        authorizer.authorize(citizen(P1), "read", ConsentRecordOf(P2, "health"))
    assert refused.value.message == (
        f"access denied: citizen {P1!r} may not read the consent records of {P2!r} held by "
        "'health'; only the person themself, or a DPO or consent administrator of the "
        "controller, may read them"
    )


def test_an_action_a_resource_does_not_have_is_refused_by_name(authorizer) -> None:
    with pytest.raises(AccessDenied) as refused:
        authorizer.authorize(HEALTH_DPO, "approve", AgencyDocuments("health"))
    assert refused.value.message == (
        "access denied: 'approve' is not an action on AgencyDocuments "
        "(its actions are: edit, publish, read)"
    )
    assert authorizer.is_allowed(HEALTH_DPO, "delete", AgencyDocuments("health")) is False


def test_a_requester_without_a_person_has_no_citizen_rights(authorizer) -> None:
    assert (
        authorizer.is_allowed(Requester(subject=P1), "read", ConsentRecordOf(P1, "health")) is False
    )


def test_any_verified_requester_carrying_a_person_is_read_as_that_citizen(authorizer) -> None:
    @dataclass(frozen=True)
    class PortalRequester:  # a Requester with the citizen's pseudonym, as the portal's token has
        subject: str
        person: str
        roles: tuple[str, ...] = ()

    actor = PortalRequester(subject="someone", person=P1)
    assert authorizer.is_allowed(actor, "withdraw", ConsentRecordOf(P1, "health")) is True
    assert authorizer.is_allowed(actor, "withdraw", ConsentRecordOf(P2, "health")) is False


def test_resources_refuse_an_empty_agency_or_pseudonym() -> None:
    with pytest.raises(SettingsError, match=r"^ConsentRecordOf\.pseudonym must be a non-empty"):
        ConsentRecordOf("", "health")
    with pytest.raises(SettingsError, match=r"^DraftApproval\.author must be a non-empty"):
        DraftApproval("health", author=None)  # type: ignore[arg-type]


def test_the_shipped_rules_are_packaged_and_load() -> None:
    assert platform_policy_path().name == "platform.polar"
    assert platform_policy_path().is_file()
    assert PlatformAuthorizer().load_error is None


def test_a_broken_polar_file_makes_every_check_deny(tmp_path: Path) -> None:
    broken = tmp_path / "platform.polar"
    broken.write_text(platform_policy_path().read_text().replace("allow(actor", "allow(actor (", 1))
    authorizer = PlatformAuthorizer(broken)
    assert authorizer.load_error is not None
    assert authorizer.load_error.startswith(f"platform policy {broken} could not be loaded: ")
    for actor, action, resource in ALLOWED:
        assert authorizer.is_allowed(actor, action, resource) is False
    with pytest.raises(AccessDenied, match=r"may not edit anything: platform policy .* could not"):
        authorizer.authorize(HEALTH_DPO, "edit", AgencyDocuments("health"))
    with pytest.raises(SettingsError, match="could not be loaded"):
        authorizer.check()


def test_a_rule_that_fails_while_deciding_denies(tmp_path: Path) -> None:
    faulty = tmp_path / "platform.polar"
    faulty.write_text(
        'allow(actor: PlatformActor, "read", documents: AgencyDocuments) if\n'
        "    actor.no_such_attribute = documents.agency;\n"
    )
    authorizer = PlatformAuthorizer(faulty)
    assert authorizer.load_error is None
    assert authorizer.is_allowed(HEALTH_DPO, "read", AgencyDocuments("health")) is False
    with pytest.raises(AccessDenied, match=r"policy failed \("):
        authorizer.authorize(HEALTH_DPO, "read", AgencyDocuments("health"))


def test_a_missing_polar_file_makes_every_check_deny(tmp_path: Path) -> None:
    authorizer = PlatformAuthorizer(tmp_path / "absent.polar")
    assert all(authorizer.is_allowed(*case) is False for case in ALLOWED)
