from datetime import UTC, datetime

from datatrust.adapters import WifiAccounting, read_freeradius_detail
from datatrust.errors import RecordError

from ._fixtures import fixture


def at(hour: int, minute: int) -> datetime:
    return datetime(2026, 10, 1, hour, minute, tzinfo=UTC)


SESSION = {
    "session_id": "5F3A2C1B00000001",
    "unique_session_id": "4c1d2e8f0a6b3c97",
    "calling_station_mac": "aa:bb:cc:dd:ee:01",
    "called_station_mac": "11:22:33:44:55:66",
    "ssid": "CoventryFreeWiFi",
    "nas_identifier": "cov-ap-014a-01",
}


def test_start_interim_and_stop_records_parse_into_whole_records() -> None:
    records = list(read_freeradius_detail(fixture("freeradius_detail"), "detail"))

    assert records == [
        WifiAccounting(
            status_type="Start",
            event_time=at(8, 0),
            session_time_seconds=None,
            input_octets=None,
            output_octets=None,
            **SESSION,
        ),
        WifiAccounting(
            status_type="Interim-Update",
            event_time=at(8, 15),
            session_time_seconds=900,
            input_octets=1048576,
            output_octets=8388608,
            **SESSION,
        ),
        WifiAccounting(
            status_type="Stop",
            event_time=at(8, 20),
            session_time_seconds=1200,
            input_octets=1500000 + 2**32,
            output_octets=9000000,
            **SESSION,
        ),
    ]


def test_bad_records_are_located_errors_and_the_good_record_after_them_still_parses() -> None:
    records = list(read_freeradius_detail(fixture("freeradius_detail_bad"), "detail"))

    errors = [(r.location, r.reason) for r in records if isinstance(r, RecordError)]
    assert errors == [
        (
            "detail:1 (record 1)",
            "Event-Timestamp 'Oct 41 2026 09:00:00 UTC' is invalid: not a real calendar date "
            "or time; check the timestamp",
        ),
        (
            "detail:11 (record 2)",
            "calling_station_mac 'not-a-mac' is invalid: a MAC address is 12 hex digits "
            "(IEEE 802); write it as AA-BB-CC-DD-EE-FF",
        ),
    ]
    assert records[-1] == WifiAccounting(
        status_type="Start",
        session_id="5F3A2C1B00000004",
        unique_session_id="1b2c3d4e5f6a7b8c",
        calling_station_mac="aa:bb:cc:dd:ee:03",
        called_station_mac="11:22:33:44:55:77",
        ssid="CoventryFreeWiFi",
        nas_identifier="cov-ap-014a-02",
        event_time=at(9, 2),
        session_time_seconds=None,
        input_octets=None,
        output_octets=None,
    )


def test_a_record_without_a_unique_session_id_says_to_enable_acct_unique() -> None:
    text = fixture("freeradius_detail").split("\n\n")[0]
    text = "\n".join(line for line in text.splitlines() if "Acct-Unique" not in line) + "\n"

    (error,) = read_freeradius_detail(text, "detail")

    assert isinstance(error, RecordError)
    assert error.reason == (
        "Acct-Unique-Session-Id None is invalid: this attribute is required; "
        "enable the acct_unique policy in preacct"
    )


def test_a_record_with_only_the_servers_timestamp_uses_it() -> None:
    text = fixture("freeradius_detail").split("\n\n")[0]
    text = "\n".join(line for line in text.splitlines() if "Event-Timestamp" not in line)

    (record,) = read_freeradius_detail(text, "detail")

    assert isinstance(record, WifiAccounting)
    assert record.event_time == at(8, 0)


def test_a_record_starting_with_an_attribute_line_is_refused() -> None:
    (error,) = read_freeradius_detail("\tAcct-Status-Type = Start\n", "detail")

    assert isinstance(error, RecordError)
    assert error.location == "detail:1 (record 1)"
    assert error.reason.startswith("record starts with an attribute line, not a date line")
