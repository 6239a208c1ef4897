import json
from datetime import UTC, datetime

from datatrust.adapters import SensorUplink, read_chirpstack_uplinks, read_mqtt_uplink
from datatrust.errors import RecordError

from ._fixtures import fixture

AIR = {"temperature": 23.8, "humidity": 62.0, "co2": 936.0, "pm2_5": 32.0, "pm10": 48.0}
AIR_UNITS = {
    "temperature": "Cel",
    "humidity": "%RH",
    "co2": "ppm",
    "pm2_5": "µg/m3",
    "pm10": "µg/m3",
}
AIR_UPLINK = SensorUplink(
    device_id="24e124707c481005",
    received_at=datetime(2026, 10, 1, 8, 0, 0, 123456, tzinfo=UTC),
    device_time=datetime(2026, 10, 1, 8, 0, 0, 119000, tzinfo=UTC),
    frame_counter=41,
    gateway_id="b827ebfffe6c2a1d",
    rssi=-87.0,
    snr=7.5,
    measurements=AIR,
    units=AIR_UNITS,
)
PEOPLE_UPLINK = SensorUplink(
    device_id="24e124128c140062",
    received_at=datetime(2026, 10, 1, 8, 15, 1, 500000, tzinfo=UTC),
    device_time=datetime(2026, 10, 1, 8, 15, 1, 481220, tzinfo=UTC),
    frame_counter=0,
    gateway_id="0016c001f153a14c",
    rssi=-99.0,
    snr=1.25,
    measurements={"people_in": 19.0, "people_out": 20.0},
    units={"people_in": "count", "people_out": "count"},
)
NOW = datetime(2026, 10, 2, tzinfo=UTC)


def test_decoded_and_codec_decoded_events_parse_into_whole_records() -> None:
    records = list(read_chirpstack_uplinks(fixture("chirpstack_uplinks.ndjson"), "cs.ndjson"))

    # Event 1: object used, best gateway by RSSI, nanosecond time. Event 2: no object, so
    # data goes through the VS350 codec chosen by deviceProfileName; upper-case devEui;
    # RSSI and SNR as strings; fCnt 0 left out.
    assert records == [AIR_UPLINK, PEOPLE_UPLINK]


def test_the_models_mapping_wins_over_the_device_profile_name() -> None:
    event = json.loads(fixture("chirpstack_uplinks.ndjson").splitlines()[1])
    event["deviceInfo"]["deviceProfileName"] = "Milesight people counter"

    (record,) = read_chirpstack_uplinks(
        json.dumps(event), "cs", models={"24e124128c140062": "vs350"}
    )

    assert record == PEOPLE_UPLINK


def test_bad_events_are_located_errors_and_the_good_event_after_them_still_parses() -> None:
    records = list(read_chirpstack_uplinks(fixture("chirpstack_uplinks_bad.ndjson"), "b", now=NOW))

    errors = [(r.location, r.reason) for r in records if isinstance(r, RecordError)]
    assert errors == [
        (
            "b:1#/deviceInfo/devEui",
            "/deviceInfo/devEui '24e1-2412' is invalid: a DevEUI is 16 hex digits "
            "(LoRaWAN EUI-64); send the whole ChirpStack up event",
        ),
        (
            "b:2#/data",
            "/data 'BMwS!!' is invalid: the payload must be non-empty base64; send the payload "
            "exactly as ChirpStack encoded it",
        ),
        (
            "b:3#/deviceInfo/deviceProfileName",
            "/deviceInfo/deviceProfileName 'Elsys ERS CO2' is invalid: no decoded payload and no "
            "codec for this model (codecs: am308, vs350); decode on the network server, or "
            "register the device's model in the inventory",
        ),
        (
            "b:4#/time",
            "/time '1970-01-01T00:00:07+00:00' is invalid: a timestamp before 2000-01-01 is a "
            "reset or unset device clock; check the sender's clock and time source",
        ),
        (
            "b:5#/fCnt",
            "/fCnt 'many' is invalid: must be a whole number >= 0; send an unsigned integer",
        ),
        (
            "b:6",
            "line is not JSON (Unterminated string starting at at column 115); "
            "each line must be one whole message",
        ),
    ]
    assert records[-1] == AIR_UPLINK
    assert all(r.details["field"] == r.location.split("#")[1] for r in records[:5])  # type: ignore[union-attr]


def test_an_event_from_the_future_is_refused_only_when_now_is_given() -> None:
    line = fixture("chirpstack_uplinks.ndjson").splitlines()[0]

    (error,) = read_chirpstack_uplinks(line, "cs", now=datetime(2026, 9, 29, tzinfo=UTC))
    (record,) = read_chirpstack_uplinks(line, "cs")

    assert isinstance(error, RecordError)
    assert error.reason == (
        "/time '2026-10-01T08:00:00.123456789+00:00' is invalid: more than a day after the "
        "time of reading (2026-09-29T00:00:00+00:00); check the sender's clock and time zone"
    )
    assert record == AIR_UPLINK


def test_mqtt_messages_are_routed_by_topic_to_their_network_servers_reader() -> None:
    chirpstack = fixture("chirpstack_uplinks.ndjson").splitlines()[0].encode()
    tts = fixture("things_stack_uplinks.ndjson").splitlines()[2].encode()

    assert read_mqtt_uplink(
        "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/24e124707c481005/event/up",
        chirpstack,
        "mqtt",
    ) == [AIR_UPLINK]
    (record,) = read_mqtt_uplink(
        "v3/coventry-air-and-footfall@ttn/devices/pc-014a-01/up", tts, "mqtt"
    )
    assert isinstance(record, SensorUplink)
    assert record.device_id == "pc-014a-01"


def test_an_mqtt_message_on_another_topic_or_for_another_device_is_refused() -> None:
    payload = fixture("chirpstack_uplinks.ndjson").splitlines()[0].encode()

    (other,) = read_mqtt_uplink("application/1/device/24e124707c481005/event/join", payload, "m")
    (wrong,) = read_mqtt_uplink("application/1/device/0000000000000001/event/up", payload, "m")
    (binary,) = read_mqtt_uplink("application/1/device/24e124707c481005/event/up", b"\x0a\xff", "m")

    assert isinstance(other, RecordError)
    assert other.reason.startswith(
        "topic 'application/1/device/24e124707c481005/event/join' is neither a The Things "
        "Stack uplink"
    )
    assert isinstance(wrong, RecordError)
    assert wrong.reason == (
        "/deviceInfo/devEui '24e124707c481005' is not the device '0000000000000001' the topic "
        "'application/1/device/0000000000000001/event/up' names; check the bridge that "
        "published it"
    )
    assert isinstance(binary, RecordError)
    assert binary.reason.startswith("payload is not UTF-8 JSON (byte 1); use the JSON marshaler")
    assert binary.details["raw"] == "\n\ufffd"
