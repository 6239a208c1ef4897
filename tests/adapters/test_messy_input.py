"""Real-feed messiness and bad input across readers, and ``raw=`` on every error."""

from datetime import UTC, datetime

import pytest

from datatrust.adapters import (
    FORMATS,
    CareEvent,
    WifiAccounting,
    read_cld_csv,
    read_freeradius_detail,
)
from datatrust.errors import RecordError, SourceError

from ._fixtures import fixture

MESSY_DETAIL = (
    "Thu Oct  1 09:00:00 2026\r\n"
    "    Acct-Status-Type   =   Start\r\n"
    '\tNAS-Identifier = "cov-ap-014a-01"   \r\n'
    '\tCalled-Station-Id = "112233445566:CoventryFreeWiFi"\r\n'
    '\tCalling-Station-Id = "aabb.ccdd.ee02"\r\n'
    '\tAcct-Session-Id = "5F3A2C1B00000009"\r\n'
    '\tAcct-Unique-Session-Id = "9e0f1a2b3c4d5e60"\r\n'
    '\tAruba-Essid-Name = "CoventryFreeWiFi"\r\n'
    "\tAttr-26.14823.99 = 0x0102\r\n"
    '\tEvent-Timestamp = "Oct  1 2026 10:00:00 BST"\r\n'
    "\r\n"
    "Thu Oct  1 09:01:00 2026\n"
    "\tAcct-Status-Type = Stop\n"
    '\tNAS-Identifier = "cov-ap-014a-01"\n'
    '\tCalling-Station-Id = "AA-BB-CC-DD-EE-03"\n'
    '\tAcct-Session-Id = "5F3A'
)


def test_odd_spacing_unknown_attributes_and_bst_are_read_and_a_cut_record_is_reported() -> None:
    good, cut = read_freeradius_detail(MESSY_DETAIL, "detail")

    assert good == WifiAccounting(
        status_type="Start",
        session_id="5F3A2C1B00000009",
        unique_session_id="9e0f1a2b3c4d5e60",
        calling_station_mac="aa:bb:cc:dd:ee:02",
        called_station_mac="11:22:33:44:55:66",
        ssid="CoventryFreeWiFi",
        nas_identifier="cov-ap-014a-01",
        event_time=datetime(2026, 10, 1, 9, 0, tzinfo=UTC),
        session_time_seconds=None,
        input_octets=None,
        output_octets=None,
    )
    assert isinstance(cut, RecordError)
    assert cut.location == "detail:12 (record 2)"
    assert cut.reason == (
        "line 16: Acct-Session-Id is cut off (no closing quote) (the file ends inside this "
        "record: was it copied while FreeRADIUS was writing it?)"
    )
    assert cut.details["raw"] == (
        "Thu Oct  1 09:01:00 2026\n\tAcct-Status-Type = Stop\n"
        '\tNAS-Identifier = "cov-ap-014a-01"\n\tCalling-Station-Id = "[MAC]"\n'
        '\tAcct-Session-Id = "5F3A'
    )


CLD_HEADER = (
    "LA_Code,LA_Person_Unique_Identifier,NHS_Number,Event_Type,Event_Reference,"
    "Event_Start_Date,Event_End_Date,Service_Type,Unknown_Extra\n"
)


def test_a_csv_with_a_bom_an_unknown_column_and_a_shifted_row_keeps_the_good_rows() -> None:
    text = (
        "\ufeff"
        + CLD_HEADER
        + "E08000026,CV1,9990000018,Service,SER-1,2026-08-01,,Long Term Support: Community,x\n"
        + "E08000026,CV2,9990000026,Service,SER-2,2026-08-01,,Long Term, Support,x\n"
        + "E08000026,CV3,999 000 0034,Assesment,ASS-3,2026-08-01,2026-08-02,,x\n"
    )

    first, shifted, wrong_code = read_cld_csv(text.encode("utf-8"), "cld.csv")

    assert first == CareEvent(
        event_reference="SER-1",
        la_person_id="CV1",
        nhs_number="9990000018",
        event_type="Service",
        service_type="Long Term Support: Community",
        started_on=datetime(2026, 8, 1).date(),
        ended_on=None,
        lsoa_code=None,
    )
    assert isinstance(shifted, RecordError)
    assert shifted.location == "cld.csv:3"
    assert shifted.reason == (
        "row has 10 values but the header names 9 columns; quote values that contain commas"
    )
    assert shifted.details["raw"] == (
        "E08000026,CV2,[NHS],Service,SER-2,2026-08-01,,Long Term, Support,x"
    )
    assert isinstance(wrong_code, RecordError)
    assert wrong_code.details["field"] == "event_type"
    assert wrong_code.details["raw"] == (
        "E08000026,CV3,[NHS],Assesment,ASS-3,2026-08-01,2026-08-02,,x"
    )


def test_a_csv_missing_a_column_or_not_utf8_is_refused_whole() -> None:
    with pytest.raises(SourceError, match=r"^cld.csv:1: the header lacks column\(s\) Event_Type"):
        read_cld_csv(CLD_HEADER.replace("Event_Type,", ""), "cld.csv")
    not_utf8 = r"^cld.csv: not UTF-8 text \(byte 140\); re-export it as UTF-8$"
    with pytest.raises(SourceError, match=not_utf8):
        read_cld_csv(CLD_HEADER.encode("utf-8") + b"E080000\xa3", "cld.csv")


def test_a_care_event_starting_in_the_future_is_refused_when_now_is_given() -> None:
    text = CLD_HEADER + "E08000026,CV1,,Request,REQ-1,2027-08-01,,,\n"

    (error,) = read_cld_csv(text, "cld.csv", now=datetime(2026, 10, 1, tzinfo=UTC))

    assert isinstance(error, RecordError)
    assert error.reason == (
        "Event_Start_Date '2027-08-01' is invalid: more than a day after the time of reading "
        "(2026-10-01); check the year"
    )


BAD_FIXTURES = [
    ("things-stack-uplinks", "things_stack_uplinks_bad.ndjson"),
    ("chirpstack-uplinks", "chirpstack_uplinks_bad.ndjson"),
    ("freeradius-detail", "freeradius_detail_bad"),
    ("meraki-scanning", "meraki_scanning_bad.ndjson"),
    ("fhir-bundle", "fhir_bundle_bad.json"),
    ("fhir-bundle", "fhir_bundle_clinical.json"),
    ("cld-csv", "cld_bad.csv"),
    ("hclic-xml", "hclic_bad.xml"),
    ("sensor-inventory", "sensor_inventory_bad.csv"),
    ("access-point-inventory", "access_point_inventory_bad.csv"),
]


@pytest.mark.parametrize(("format_name", "name"), BAD_FIXTURES)
def test_every_error_of_every_reader_carries_its_redacted_raw_record(
    format_name: str, name: str
) -> None:
    errors = [
        r
        for r in FORMATS[format_name](fixture(name), name, now=datetime(2026, 11, 1, tzinfo=UTC))
        if isinstance(r, RecordError)
    ]

    assert errors
    for error in errors:
        raw = error.details["raw"]
        assert isinstance(raw, str)
        assert 0 < len(raw) <= 10_000
        assert "9990000017" not in raw
        assert "AA-BB-CC-DD-EE-02" not in raw
