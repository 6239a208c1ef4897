import pytest

from datatrust.errors import AccessDenied, PurposeMissing, PurposeUnknown
from datatrust.policies import AccessRequest, Permit, decide, skeleton_policy
from datatrust.trust import demo_purpose_register

AREA_AGGREGATES = frozenset({("Query", "areas"), ("Area", "code"), ("Area", "footfall")})


def ask(purpose, fields=AREA_AGGREGATES):
    request = AccessRequest(purpose=purpose, node="council", fields=fields)
    return decide(request, demo_purpose_register(), skeleton_policy())


def test_aggregate_area_fields_are_permitted_for_service_planning():
    assert ask("service-planning") == Permit(
        purpose="service-planning",
        fields=AREA_AGGREGATES,
        policy_version="skeleton-2026-11-26",
    )


@pytest.mark.parametrize("purpose", ["direct-care", "research", "safeguarding"])
def test_other_registered_purposes_are_denied_naming_the_purpose_and_node(purpose):
    with pytest.raises(
        AccessDenied,
        match=f"no agreement of the trust allows purpose '{purpose}' at node 'council'",
    ):
        ask(purpose)


def test_a_field_the_policy_does_not_classify_is_denied_by_name():
    fields = AREA_AGGREGATES | {("Person", "nhsNumber")}
    with pytest.raises(AccessDenied, match=r"may not read Person\.nhsNumber"):
        ask("service-planning", fields)


def test_missing_and_unknown_purposes_are_refused_before_policy():
    with pytest.raises(PurposeMissing):
        ask(None)
    with pytest.raises(PurposeUnknown):
        ask("marketing")


def test_an_error_inside_the_policy_denies(monkeypatch):
    policy = skeleton_policy()
    monkeypatch.setattr(type(policy), "field_class", lambda *a: 1 / 0)
    request = AccessRequest(purpose="service-planning", node="council", fields=AREA_AGGREGATES)
    with pytest.raises(AccessDenied, match=r"could not be evaluated \(ZeroDivisionError\)"):
        decide(request, demo_purpose_register(), policy)
