from datetime import UTC, date, datetime

import pytest

from datatrust.adapters import HousingCase, read_hclic_xml
from datatrust.errors import RecordError, SourceError

from ._fixtures import fixture


def test_cases_parse_with_the_furthest_duty_the_main_applicant_and_local_elements() -> None:
    records = list(read_hclic_xml(fixture("hclic.xml"), "hclic.xml"))

    assert records == [
        HousingCase(
            case_ref="CV-H-000001",
            la_person_id="CV-P-000001",
            nhs_number="9990000026",
            approach_date=date(2026, 7, 6),
            duty_type="prevention",
            duty_start=date(2026, 7, 8),
            duty_end=date(2026, 8, 28),
            reason_code="End of private rented tenancy - assured shorthold",
            household_type="Single adult male",
            lsoa_code="E01009522",
        ),
        # DD/MM/YYYY date, an unknown supplier element, the applicant second in People
        HousingCase(
            case_ref="CV-H-000002",
            la_person_id="CV-P-000002",
            nhs_number=None,
            approach_date=date(2026, 8, 15),
            duty_type="main",
            duty_start=date(2026, 9, 24),
            duty_end=None,
            reason_code="Domestic abuse",
            household_type="Single parent with dependent children - female",
            lsoa_code="E01009525",
        ),
        HousingCase(
            case_ref="CV-H-000003",
            la_person_id="CV-P-000004",
            nhs_number=None,
            approach_date=date(2026, 9, 29),
            duty_type="none",
            duty_start=None,
            duty_end=None,
            reason_code=None,
            household_type=None,
            lsoa_code=None,
        ),
    ]


def test_bad_cases_are_located_errors_and_the_good_case_after_them_still_parses() -> None:
    records = list(read_hclic_xml(fixture("hclic_bad.xml"), "h.xml"))

    errors = [(r.location, r.reason) for r in records if isinstance(r, RecordError)]
    assert errors == [
        (
            "h.xml#/HCLIC/Case[1]",
            "approach_date '2017-11-02' is invalid: H-CLIC covers applications from 3 April 2018 "
            "(Homelessness Reduction Act 2017); check the date of application",
        ),
        (
            "h.xml#/HCLIC/Case[2]",
            "nhs_number '9990000017' is invalid: an NHS number is 10 digits whose last is a valid "
            "modulus 11 check digit (NHS Data Dictionary, NHS NUMBER); check the number was "
            "copied correctly, or leave it empty if unknown",
        ),
        (
            "h.xml#/HCLIC/Case[3]",
            "duty_end '2026-07-12' is invalid: a duty cannot end before it starts; check the "
            "duty's start and end dates",
        ),
        (
            "h.xml#/HCLIC/Case[4]/Main/App_Date",
            "/Main/App_Date '2026-13-01' is invalid: dates are YYYY-MM-DD (or DD/MM/YYYY); "
            "write e.g. 2026-10-01",
        ),
        (
            "h.xml#/HCLIC/Case[5]/People",
            "/People None is invalid: this H-CLIC section is required; send it",
        ),
    ]
    assert "<Local_NHS_Number>[NHS]</Local_NHS_Number>" in records[1].details["raw"]  # type: ignore[union-attr]
    assert records[-1] == HousingCase(
        case_ref="CV-H-000015",
        la_person_id="CV-P-000015",
        nhs_number=None,
        approach_date=date(2026, 7, 15),
        duty_type="prevention",
        duty_start=date(2026, 7, 15),
        duty_end=None,
        reason_code=None,
        household_type=None,
        lsoa_code="E01009523",
    )


def test_a_case_dated_in_the_future_is_refused_when_now_is_given() -> None:
    records = list(read_hclic_xml(fixture("hclic.xml"), "h", now=datetime(2026, 9, 1, tzinfo=UTC)))

    assert [(r.location, r.details["field"]) for r in records if isinstance(r, RecordError)] == [
        ("h#/HCLIC/Case[2]/MainDuty/Duty_Start", "/MainDuty/Duty_Start"),
        ("h#/HCLIC/Case[3]/Main/App_Date", "/Main/App_Date"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE HCLIC [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<HCLIC><Case><CaseRef>&b;</CaseRef></Case></HCLIC>",
            r"^h.xml: refused: the XML declares a DTD or entities \(DTDForbidden\)",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE HCLIC [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            "<HCLIC><Case><CaseRef>&x;</CaseRef></Case></HCLIC>",
            r"^h.xml: refused: the XML declares a DTD or entities",
        ),
        (
            "<HCLIC>\n  <Case>\n    <CaseRef>CV-H-1</CaseRef>\n  </Ca",
            r"^h.xml:4: not well-formed XML \(unclosed token at column 2\); was the file cut off",
        ),
        ("<Return><Case/></Return>", r"^h.xml: expected an H-CLIC return \(root element HCLIC\)"),
    ],
)
def test_xml_bombs_external_entities_truncated_files_and_other_roots_are_refused_whole(
    text: str, message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        read_hclic_xml(text, "h.xml")
