import pytest

from datatrust.adapters import (
    AccessPointDevice,
    SensorDevice,
    read_access_point_inventory_csv,
    read_sensor_inventory_csv,
)
from datatrust.errors import RecordError, SourceError

from ._fixtures import fixture


def test_sensor_rows_parse_into_whole_records() -> None:
    records = list(read_sensor_inventory_csv(fixture("sensor_inventory.csv"), "s.csv"))

    assert records == [
        SensorDevice(
            device_id="aq-014a-01",
            model="am308",
            kind="air-quality",
            lsoa_code="E01009522",
            latitude=52.42441,
            longitude=-1.53206,
        ),
        SensorDevice(
            device_id="pc-014a-01",
            model="vs350",
            kind="people-counter",
            lsoa_code="E01009522",
            latitude=52.4245,
            longitude=-1.5319,
        ),
    ]


def test_bad_sensor_rows_are_located_errors_and_the_good_row_after_them_still_parses() -> None:
    records = list(read_sensor_inventory_csv(fixture("sensor_inventory_bad.csv"), "s.csv"))

    errors = [(r.location, r.reason) for r in records if isinstance(r, RecordError)]
    assert errors == [
        (
            "s.csv:2",
            "lsoa_code 'Coventry 014A' is invalid: an ONS 2021 LSOA code matches "
            "^[EW]01\\d{6}$, e.g. E01009522; use the 2021 LSOA code, not its name",
        ),
        (
            "s.csv:3",
            "device_id '' is invalid: The Things Stack device IDs are 3-36 lowercase letters, "
            "digits and single dashes, not starting or ending with a dash; use the device ID "
            "registered on the network",
        ),
        ("s.csv:4", "latitude 'north' is not a number; write decimal degrees, e.g. 52.4068"),
    ]
    assert records[-1] == SensorDevice(
        device_id="pc-010a-02",
        model="vs350",
        kind="people-counter",
        lsoa_code="E01009523",
        latitude=52.43574,
        longitude=-1.58487,
    )


def test_access_point_macs_are_normalised_whatever_their_separator() -> None:
    records = list(read_access_point_inventory_csv(fixture("access_point_inventory.csv"), "a"))

    assert records == [
        AccessPointDevice(
            ap_mac="11:22:33:44:55:66",
            ssid="CoventryFreeWiFi",
            nas_identifier="cov-ap-014a-01",
            lsoa_code="E01009522",
        ),
        AccessPointDevice(
            ap_mac="11:22:33:44:55:77",
            ssid="CoventryFreeWiFi",
            nas_identifier="cov-ap-014a-02",
            lsoa_code="E01009522",
        ),
    ]


def test_a_short_access_point_mac_is_a_located_error_and_the_next_row_still_parses() -> None:
    records = list(read_access_point_inventory_csv(fixture("access_point_inventory_bad.csv"), "a"))

    assert [(r.location, r.reason) for r in records if isinstance(r, RecordError)] == [
        (
            "a:2",
            "ap_mac '11-22-33-44-55' is invalid: a MAC address is 12 hex digits (IEEE 802); "
            "write it as AA-BB-CC-DD-EE-FF",
        )
    ]
    assert records[-1] == AccessPointDevice(
        ap_mac="11:22:33:44:55:88",
        ssid="CoventryFreeWiFi",
        nas_identifier="cov-ap-010a-01",
        lsoa_code="E01009523",
    )


def test_an_inventory_missing_a_column_is_refused_whole() -> None:
    with pytest.raises(SourceError, match=r"^s.csv:1: the header lacks column\(s\) longitude;"):
        read_sensor_inventory_csv("device_id,model,kind,lsoa_code,latitude\n", "s.csv")


def test_an_inventory_that_is_not_utf8_is_refused_whole() -> None:
    with pytest.raises(SourceError, match=r"^s.csv: not UTF-8 text \(byte 0\)"):
        read_sensor_inventory_csv(b"\xff\xfe", "s.csv")
