"""The readers' fast paths build exactly what the general paths build, and give way to them.

Each fast path (LoRaWAN uplinks, FreeRADIUS records, common timestamp shapes) only handles
input in the common shape; these tests pin that it does handle the fixtures' good records
(so it is not silently dead), that its records equal the general path's, and that the
unusual cases it leaves alone still read as they always did.
"""

import json
from datetime import UTC, datetime

import pytest

from datatrust.adapters import (
    WifiAccounting,
    _chirpstack,
    _freeradius,
    _things_stack,
    _time,
    normalise_mac,
    parse_timestamp,
    read_chirpstack_uplinks,
    read_freeradius_detail,
    read_things_stack_uplinks,
)
from datatrust.adapters._codecs import CODECS
from datatrust.adapters._common import Unusual
from datatrust.errors import RecordError

from ._fixtures import fixture

NOW = datetime(2026, 10, 2, tzinfo=UTC)
LATEST = NOW + _time.FUTURE_SLACK


def good_lines(name: str) -> list[str]:
    return fixture(name).splitlines()


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (_things_stack, "things_stack_uplinks.ndjson"),
        (_chirpstack, "chirpstack_uplinks.ndjson"),
    ],
)
def test_good_fixture_uplinks_take_the_fast_path_and_equal_the_general_path(module, name) -> None:
    taken = 0
    for line in good_lines(name):
        message = json.loads(line)
        try:
            fast = module._common_uplink(message, {}, CODECS, LATEST)
        except Unusual:  # e.g. RSSI sent as a string: the general path reads it
            continue
        taken += 1
        assert fast == module._general("up", message, {}, CODECS, NOW)
    assert taken >= 1


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (_things_stack, "things_stack_uplinks_bad.ndjson"),
        (_chirpstack, "chirpstack_uplinks_bad.ndjson"),
    ],
)
def test_the_fast_path_gives_way_on_every_bad_fixture_uplink(module, name) -> None:
    for line in good_lines(name):
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(module._general("up", message, {}, CODECS, NOW), RecordError):
            with pytest.raises((Unusual, ValueError)):
                module._common_uplink(message, {}, CODECS, LATEST)


def test_a_frame_counter_beyond_64_bits_is_read_as_the_standard_json_reads_it() -> None:
    message = json.loads(good_lines("things_stack_uplinks.ndjson")[0])
    message["uplink_message"]["f_cnt"] = 2**70

    (record,) = read_things_stack_uplinks(json.dumps(message) + "\n" + "", "up")

    assert record.frame_counter == 2**70


def test_a_measurement_beyond_64_bits_is_read_as_the_standard_json_reads_it() -> None:
    event = json.loads(good_lines("chirpstack_uplinks.ndjson")[0])
    event["object"]["co2"] = 2**70

    (record,) = read_chirpstack_uplinks(json.dumps(event), "cs")

    assert record.measurements["co2"] == float(2**70)


def test_nan_in_an_ndjson_line_is_still_refused_by_the_record() -> None:
    line = good_lines("things_stack_uplinks.ndjson")[0]
    nan = line.replace('"rssi": -87', '"rssi": NaN', 1)

    _record, error = read_things_stack_uplinks(line + "\n" + nan, "up")

    assert isinstance(error, RecordError)
    assert error.location == "up:2#/uplink_message/rx_metadata/0/rssi"
    assert error.reason == (
        "/uplink_message/rx_metadata/0/rssi nan is invalid: must be a number; send a JSON number"
    )


def records_of(text: str) -> list[object]:
    return list(read_freeradius_detail(text, "detail"))


def test_good_fixture_records_take_the_fast_path_and_equal_the_general_path() -> None:
    chunks = fixture("freeradius_detail").strip("\n").split("\n\n")

    for chunk in chunks:
        fast = _freeradius._common_record(chunk, None)
        assert fast == _freeradius._record("detail:1 (record 1)", 1, chunk.split("\n"), None)


def test_a_crlf_detail_file_reads_exactly_as_its_lf_copy() -> None:
    text = fixture("freeradius_detail")

    assert records_of(text.replace("\n", "\r\n")) == records_of(text)


def test_records_separated_by_a_line_of_spaces_are_still_two_records() -> None:
    first, second, *_rest = fixture("freeradius_detail").split("\n\n")

    records = records_of(f"{first}\n   \n{second}\n")

    assert [type(record) for record in records] == [WifiAccounting, WifiAccounting]
    assert records == records_of(f"{first}\n\n{second}\n")


def test_a_repeated_attribute_keeps_its_last_value_as_before() -> None:
    first = fixture("freeradius_detail").split("\n\n")[0]
    repeated = first.replace(
        "\tAcct-Status-Type = Start", "\tAcct-Status-Type = Stop\n\tAcct-Status-Type = Start"
    )

    (record,) = records_of(repeated)

    assert record.status_type == "Start"


def test_an_error_after_fast_records_names_the_right_line_and_record_number() -> None:
    first = fixture("freeradius_detail").split("\n\n")[0]
    broken = first.replace('Acct-Session-Id = "5F3A2C1B00000001"', 'Acct-Session-Id = "5F3A')

    *_good, error = records_of(f"{first}\n\n\n{first}\n\n{broken}\n")

    assert error.location == "detail:42 (record 3)"
    assert error.reason == "line 53: Acct-Session-Id is cut off (no closing quote)"


@pytest.mark.parametrize(
    "value",
    [
        "2026-10-01T08:00:00.123456789Z",
        "2026-10-01T08:00:00Z",
        "2026-10-01T09:00:00.5+01:00",
        "2026-10-01T03:30:00-04:30",
        "2026-10-01T08:00:00.123456+00:00",
        "Oct  1 2026 08:00:00 UTC",
        "Oct 11 2026 08:00:00 GMT",
        "1790841600",
    ],
)
def test_common_timestamp_shapes_read_as_the_general_parser_reads_them(value: str) -> None:
    assert _time._common(value) == _time._parse(value, "t")
    assert parse_timestamp(value, "t") == _time._parse(value, "t")


@pytest.mark.parametrize(
    "value",
    ["2026-02-30T08:00:00Z", "2026-10-01T24:00:00Z", "Feb 30 2026 08:00:00 UTC", "Foo  1 2026"],
)
def test_impossible_times_in_a_common_shape_get_the_general_parsers_error(value: str) -> None:
    assert _time._common(value) is None
    with pytest.raises(ValueError, match=r"^t '.*' is invalid: "):
        parse_timestamp(value, "t")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"),
        ("aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff"),
        ("aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff"),
        (" AABBCCDDEEFF ", "aa:bb:cc:dd:ee:ff"),
    ],
)
def test_mac_addresses_normalise_the_same_in_every_spelling(value: str, expected: str) -> None:
    assert normalise_mac(value) == expected
