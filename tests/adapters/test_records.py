from datetime import UTC, datetime, timedelta, timezone

import pytest

import datatrust.adapters as adapters
from datatrust.adapters import (
    InvalidField,
    Patient,
    SensorUplink,
    is_valid_nhs_number,
    normalise_mac,
)


def test_every_public_name_is_exported_and_sorted() -> None:
    public = {
        name
        for name in dir(adapters)
        if not name.startswith("_") and not isinstance(getattr(adapters, name), type(adapters))
    }
    assert set(adapters.__all__) == public


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("9990000018", True),
        ("9990000026", True),
        ("9990000017", False),
        ("9990000019", False),
        ("999000001", False),
        ("99900000I8", False),
        ("9990000000", False),  # the check digit would be 10, so no number is valid
    ],
)
def test_nhs_numbers_need_ten_digits_and_a_modulus_11_check_digit(number: str, valid: bool) -> None:
    assert is_valid_nhs_number(number) is valid


def test_macs_are_normalised_to_lowercase_colon_form() -> None:
    assert normalise_mac("AA-BB-CC-DD-EE-FF") == "aa:bb:cc:dd:ee:ff"
    assert normalise_mac("aabb.ccdd.eeff") == "aa:bb:cc:dd:ee:ff"
    assert normalise_mac("AABBCCDDEEFF") == "aa:bb:cc:dd:ee:ff"


def test_an_uplink_time_that_is_not_utc_is_refused_quoting_the_rule() -> None:
    with pytest.raises(InvalidField, match=r"timestamps must be timezone-aware UTC"):
        SensorUplink(
            device_id="aq-014a-01",
            received_at=datetime(2026, 10, 1, 9, tzinfo=timezone(timedelta(hours=1))),
            device_time=None,
            frame_counter=1,
            gateway_id=None,
            rssi=None,
            snr=None,
            measurements={"pm2_5": 3.0},
            units={"pm2_5": "µg/m3"},
        )


def test_an_uplink_measurement_without_a_unit_is_refused() -> None:
    with pytest.raises(InvalidField, match=r"every measurement needs a unit, missing \['no2'\]"):
        SensorUplink(
            device_id="aq-014a-01",
            received_at=datetime(2026, 10, 1, 8, tzinfo=UTC),
            device_time=None,
            frame_counter=1,
            gateway_id=None,
            rssi=None,
            snr=None,
            measurements={"no2": 21},
        )


def test_a_patient_gender_outside_fhir_administrative_gender_is_refused() -> None:
    with pytest.raises(InvalidField, match=r"^gender 'F' is invalid: must be one of male, female"):
        Patient(nhs_number="9990000018", lsoa_code=None, birth_year=None, gender="F", source_id="x")
