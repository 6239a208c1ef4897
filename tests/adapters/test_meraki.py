from datetime import UTC, datetime

import pytest

from datatrust.adapters import PresenceObservation, read_meraki_scanning
from datatrust.errors import RecordError, SourceError

from ._fixtures import fixture

NETWORK = "L_643451796760561234"


def at(hour: int, minute: int, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 10, 1, hour, minute, second, micro, tzinfo=UTC)


def test_wifi_observations_parse_with_every_mac_spelling_and_timestamp_style() -> None:
    records = list(read_meraki_scanning(fixture("meraki_scanning_wifi.json"), "wifi.json"))

    assert records == [
        PresenceObservation(
            client_mac="02:1a:7b:00:00:01",
            ap_mac="e0:55:3d:10:00:14",
            seen_at=at(8, 0, 3),
            rssi=-47.0,
            kind="wifi",
            ssid="CoventryFreeWiFi",
            network_id=NETWORK,
        ),
        # RSSI as a string, epoch seconds, upper-case dashed MACs, empty SSID
        PresenceObservation(
            client_mac="02:1a:7b:00:00:02",
            ap_mac="e0:55:3d:10:00:15",
            seen_at=at(8, 1),
            rssi=-71.0,
            kind="wifi",
            ssid=None,
            network_id=NETWORK,
        ),
        # no nearestApMac: strongest AP of the last location; Cisco dotted MAC; epoch ms
        PresenceObservation(
            client_mac="02:1a:7b:00:00:03",
            ap_mac="e0:55:3d:10:00:16",
            seen_at=at(8, 2, 0, 500000),
            rssi=None,
            kind="wifi",
            ssid=None,
            network_id=NETWORK,
        ),
    ]


def test_ble_observations_read_bst_and_zone_less_local_times_as_london() -> None:
    records = list(read_meraki_scanning(fixture("meraki_scanning_ble.json"), "ble.json"))

    assert records == [
        PresenceObservation(
            client_mac="c0:3f:0e:00:00:09",
            ap_mac="e0:55:3d:10:00:14",
            seen_at=at(8, 30),
            rssi=-62.0,
            kind="ble",
            ssid=None,
            network_id=NETWORK,
        ),
        PresenceObservation(
            client_mac="c0:3f:0e:00:00:0a",
            ap_mac="e0:55:3d:10:00:16",
            seen_at=at(8, 31),
            rssi=None,
            kind="ble",
            ssid=None,
            network_id=NETWORK,
        ),
    ]


def test_bad_observations_are_located_errors_with_redacted_raw_records() -> None:
    records = list(read_meraki_scanning(fixture("meraki_scanning_bad.ndjson"), "bad"))

    errors = [(r.location, r.reason) for r in records if isinstance(r, RecordError)]
    assert errors == [
        (
            "bad:1#/data/observations/0",
            "client_mac 'not-a-mac' is invalid: a MAC address is 12 hex digits (IEEE 802); "
            "write it as AA-BB-CC-DD-EE-FF",
        ),
        (
            "bad:1#/data/observations/1/latestRecord/nearestApRssi",
            "/latestRecord/nearestApRssi 'loud' is invalid: must be a number; send a JSON number",
        ),
        (
            "bad:1#/data/observations/2/latestRecord/time",
            "/latestRecord/time '1999-12-31T23:59:59Z' is invalid: a timestamp before "
            "2000-01-01 is a reset or unset device clock; check the sender's clock and time "
            "source",
        ),
        (
            "bad:1#/data/observations/3/latestRecord/nearestApMac",
            "/latestRecord/nearestApMac None is invalid: the observation names no access point; "
            "send nearestApMac",
        ),
        (
            "bad:2#/type",
            "/type 'Zigbee' is invalid: must be WiFi or BLE (Meraki Scanning API v3); send the "
            "whole body",
        ),
        (
            "bad:3",
            "line is not JSON (Unterminated string starting at at column 65); each line must be "
            "one whole message",
        ),
    ]
    assert records[4] == PresenceObservation(
        client_mac="c0:3f:0e:00:00:0e",
        ap_mac="e0:55:3d:10:00:14",
        seen_at=at(8, 0, 5),
        rssi=-49.0,
        kind="ble",
        ssid=None,
        network_id=NETWORK,
    )
    raws = [r.details["raw"] for r in records if isinstance(r, RecordError)]
    assert raws[1] == (
        '{"clientMac": "[MAC]", "latestRecord": {"time": "2026-10-01T08:00:03Z", '
        '"nearestApMac": "[MAC]", "nearestApRssi": "loud"}}'
    )
    assert '"secret": "[SECRET]"' in raws[4]
    assert not any("fixture-secret-not-real" in raw for raw in raws)


def test_a_file_that_is_not_json_at_all_is_refused_whole() -> None:
    with pytest.raises(SourceError, match=r"^feed.csv:1: not JSON \(starts with 'clientMac,apMac"):
        read_meraki_scanning("clientMac,apMac\n", "feed.csv")
