import pytest

from datatrust.errors import PurposeMissing, PurposeUnknown, SettingsError
from datatrust.trust import PurposeRegister, demo_purpose_register


def test_the_demo_register_holds_the_purposes_the_interfaces_promise():
    ids = demo_purpose_register().ids
    assert {"direct-care", "safeguarding", "service-planning", "research"} <= set(ids)


def test_a_registered_purpose_resolves_with_its_dpv_term():
    purpose = demo_purpose_register().resolve(" service-planning ")
    assert (purpose.id, purpose.dpv) == ("service-planning", "dpv:ImprovePublicServices")


@pytest.mark.parametrize("header", [None, "", "   "])
def test_no_purpose_is_refused_with_how_to_send_one(header):
    with pytest.raises(PurposeMissing, match="send the HTTP header 'Purpose: <purpose id>'"):
        demo_purpose_register().resolve(header)


def test_an_unknown_purpose_is_refused_naming_it_and_the_known_ones():
    with pytest.raises(PurposeUnknown, match=r"unknown purpose 'marketing'.*lists direct-care"):
        demo_purpose_register().resolve("marketing")


def test_a_register_listing_a_purpose_twice_is_refused():
    document = {"version": "1", "purposes": [{"id": "research", "title": "a"}] * 2}
    with pytest.raises(SettingsError, match="lists 'research' twice"):
        PurposeRegister.from_document(document, source="test")


def test_a_purpose_id_outside_the_safe_alphabet_is_refused():
    document = {"version": "1", "purposes": [{"id": "Research!", "title": "a"}]}
    with pytest.raises(SettingsError, match="must be lowercase letters"):
        PurposeRegister.from_document(document, source="test")
