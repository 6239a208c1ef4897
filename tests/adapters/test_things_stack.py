from datetime import UTC, datetime

import pytest

from datatrust.adapters import (
    SensorUplink,
    decode_am308,
    decode_vs350,
    read_things_stack_uplinks,
)
from datatrust.errors import RecordError, SourceError

from ._fixtures import fixture

AIR_UNITS = {
    "temperature": "Cel",
    "humidity": "%RH",
    "co2": "ppm",
    "pm2_5": "µg/m3",
    "pm10": "µg/m3",
}
AIR = {"temperature": 23.8, "humidity": 62.0, "co2": 936.0, "pm2_5": 32.0, "pm10": 48.0}
PEOPLE_UNITS = {"people_in": "count", "people_out": "count"}


def at(hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 10, 1, hour, minute, second, micro, tzinfo=UTC)


EXPECTED = [
    SensorUplink(
        device_id="aq-014a-01",
        received_at=at(8, 0, 0, 123456),
        device_time=at(8, 0, 0, 123456),
        frame_counter=41,
        gateway_id="coventry-gw-01",
        rssi=-87.0,
        snr=7.5,
        measurements=AIR,
        units=AIR_UNITS,
    ),
    SensorUplink(
        device_id="aq-014a-01",
        received_at=at(8, 15, 0, 500000),
        device_time=at(8, 15, 0, 500000),
        frame_counter=42,
        gateway_id="coventry-gw-01",
        rssi=-87.0,
        snr=7.5,
        measurements=AIR,
        units=AIR_UNITS,
    ),
    SensorUplink(
        device_id="pc-014a-01",
        received_at=at(8, 15, 1),
        device_time=at(8, 15, 1),
        frame_counter=7,
        gateway_id="coventry-gw-02",
        rssi=-101.0,
        snr=-3.25,
        measurements={"people_in": 19.0, "people_out": 20.0},
        units=PEOPLE_UNITS,
    ),
]


def test_decoded_and_codec_decoded_uplinks_parse_into_whole_records() -> None:
    records = list(read_things_stack_uplinks(fixture("things_stack_uplinks.ndjson"), "up.ndjson"))

    assert records == EXPECTED


def test_a_json_array_of_uplinks_parses_like_ndjson() -> None:
    records = list(read_things_stack_uplinks(fixture("things_stack_uplinks.json"), "up.json"))

    assert records == EXPECTED[:2]


def test_bytes_input_parses_like_text() -> None:
    data = fixture("things_stack_uplinks.ndjson").encode("utf-8")

    assert list(read_things_stack_uplinks(data, "up.ndjson")) == EXPECTED


def test_bad_uplinks_are_located_errors_and_the_good_uplink_after_them_still_parses() -> None:
    records = list(read_things_stack_uplinks(fixture("things_stack_uplinks_bad.ndjson"), "bad"))

    assert records[0] == EXPECTED[0]
    errors = [(r.location, r.reason) for r in records if isinstance(r, RecordError)]
    assert errors == [
        (
            "bad:2#/end_device_ids/device_id",
            "/end_device_ids/device_id None is invalid: every uplink names its device; "
            "send the whole The Things Stack up message",
        ),
        (
            "bad:3#/received_at",
            "/received_at '2026-10-25 01:30' is invalid: a time without a zone is read as "
            "Europe/London, where this hour happens twice (clocks go back); send the time "
            "with an offset, e.g. +01:00 or Z",
        ),
        (
            "bad:4#/uplink_message/version_ids/model_id",
            "/uplink_message/version_ids/model_id 'ers-co2' is invalid: no decoded payload and "
            "no codec for this model (codecs: am308, vs350); decode on the network server, or "
            "register the device's model in the inventory",
        ),
        (
            "bad:5#/uplink_message/frm_payload",
            "/uplink_message/frm_payload 'AXVV!!not-base64' is invalid: the payload must be "
            "non-empty base64; send the payload exactly as The Things Stack encoded it",
        ),
        (
            "bad:6",
            "line is not JSON (Expecting property name enclosed in double quotes at column 2); "
            "each line must be one whole message",
        ),
    ]
    assert records[-1] == SensorUplink(
        device_id="pc-014a-01",
        received_at=at(8, 30, 1),
        device_time=at(8, 30, 1),
        frame_counter=8,
        gateway_id="coventry-gw-02",
        rssi=-99.0,
        snr=1.0,
        measurements={"people_in": 2.0, "people_out": 5.0},
        units=PEOPLE_UNITS,
    )
    assert len(records) == 7


def test_the_models_mapping_chooses_the_codec_for_an_unknown_model_id() -> None:
    line = fixture("things_stack_uplinks_bad.ndjson").splitlines()[3]

    (record,) = read_things_stack_uplinks(line, "up", models={"aq-014a-02": "am308"})

    assert isinstance(record, SensorUplink)
    assert record.measurements == AIR


def test_a_payload_the_codec_cannot_read_names_the_byte_and_channel() -> None:
    line = fixture("things_stack_uplinks.ndjson").splitlines()[1]
    line = line.replace('"frm_payload": "', '"frm_payload": "/w', 1)

    (error,) = read_things_stack_uplinks(line, "up")

    assert isinstance(error, RecordError)
    assert "the am308 codec cannot read it (am308: unknown channel 0xff" in error.reason


def test_a_json_array_that_does_not_parse_is_refused_whole() -> None:
    with pytest.raises(SourceError, match=r"^up.json:1: not a JSON array"):
        read_things_stack_uplinks("[{", "up.json")


def test_the_am308_codec_decodes_the_vendor_example() -> None:
    payload = bytes.fromhex(
        "0175550367EE0004687C05000106CB02077DA803087D2500097366270A7D04000B7D20000C7D3000"
    )

    # The published example JSON says battery 93, but its own byte is 0x55 = 85.
    assert decode_am308(payload) == {
        "battery": 85,
        "temperature": 23.8,
        "humidity": 62.0,
        "pir": 1,
        "light_level": 2,
        "co2": 936,
        "tvoc": 37,
        "pressure": 1008.6,
        "hcho": 0.04,
        "pm2_5": 32,
        "pm10": 48,
    }


def test_the_vs350_codec_decodes_the_vendor_example() -> None:
    payload = bytes.fromhex("04CC1200160005CC13001400")

    assert decode_vs350(payload) == {
        "total_in": 18,
        "total_out": 22,
        "period_in": 19,
        "period_out": 20,
    }


def test_a_truncated_payload_is_refused_by_the_codec() -> None:
    with pytest.raises(ValueError, match=r"^vs350: payload ends inside channel 0x05 value$"):
        decode_vs350(bytes.fromhex("05CC1300"))
