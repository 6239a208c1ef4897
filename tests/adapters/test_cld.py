from datetime import date

import pytest

from datatrust.adapters import CareEvent, read_cld_csv
from datatrust.errors import RecordError, SourceError

from ._fixtures import fixture


def test_requests_assessments_and_open_services_parse_into_whole_records() -> None:
    records = list(read_cld_csv(fixture("cld.csv"), "cld.csv"))

    person = {"la_person_id": "CV000101", "nhs_number": "9990000018", "lsoa_code": "E01009522"}
    assert records == [
        CareEvent(
            event_reference="REQ-000101-1",
            event_type="Request",
            service_type=None,
            started_on=date(2026, 7, 3),
            ended_on=date(2026, 7, 3),
            **person,
        ),
        CareEvent(
            event_reference="ASM-000101-1",
            event_type="Assessment",
            service_type=None,
            started_on=date(2026, 7, 6),
            ended_on=date(2026, 7, 20),
            **person,
        ),
        CareEvent(
            event_reference="SRV-000101-1",
            event_type="Service",
            service_type="Long Term Support: Community",
            started_on=date(2026, 7, 21),
            ended_on=None,
            **person,
        ),
        CareEvent(
            event_reference="SRV-000102-1",
            la_person_id="CV000102",
            nhs_number=None,
            event_type="Service",
            service_type="Short Term Support: ST-Max",
            started_on=date(2026, 8, 1),
            ended_on=date(2026, 9, 12),
            lsoa_code="E01009523",
        ),
    ]


def test_bad_rows_are_located_errors_and_the_good_row_after_them_still_parses() -> None:
    records = list(read_cld_csv(fixture("cld_bad.csv"), "cld.csv"))

    errors = [(r.location, r.reason) for r in records if isinstance(r, RecordError)]
    assert errors == [
        (
            "cld.csv:2",
            "nhs_number '9990000017' is invalid: an NHS number is 10 digits whose last is a "
            "valid modulus 11 check digit (NHS Data Dictionary, NHS NUMBER); check the number "
            "was copied correctly, or leave it empty if unknown",
        ),
        (
            "cld.csv:3",
            "Event_Start_Date '31/09/2026' is invalid: dates are YYYY-MM-DD (or DD/MM/YYYY); "
            "write e.g. 2026-10-01",
        ),
        (
            "cld.csv:4",
            "ended_on '2026-08-01' is invalid: an event cannot end before it starts; "
            "check Event Start Date and Event End Date",
        ),
    ]
    assert records[-1] == CareEvent(
        event_reference="REV-000106-1",
        la_person_id="CV000106",
        nhs_number="9990000042",
        event_type="Review",
        service_type=None,
        started_on=date(2026, 9, 1),
        ended_on=date(2026, 9, 1),
        lsoa_code="E01009525",
    )


def test_a_file_without_the_cld_person_and_event_columns_is_refused_whole() -> None:
    with pytest.raises(SourceError, match=r"^cld.csv:1: the header lacks column\(s\) NHS_Number"):
        read_cld_csv("LA_Person_Unique_Identifier,Event_Type\nCV1,Service\n", "cld.csv")
