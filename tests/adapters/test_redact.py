import pytest

from datatrust.adapters import redact
from datatrust.adapters._redact import redacted_raw


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Calling-Station-Id = AA-BB-CC-DD-EE-FF", "Calling-Station-Id = [MAC]"),
        ('"clientMac": "02:1a:7b:00:00:01"', '"clientMac": "[MAC]"'),
        ("ap 021a.7b00.0003 saw it", "ap [MAC] saw it"),
        ("mac=021A7B000003;", "mac=[MAC];"),
        ('"11-22-33-44-55-66:CoventryFreeWiFi"', '"[MAC]:CoventryFreeWiFi"'),
        ("NHS_Number,9990000018,", "NHS_Number,[NHS],"),
        ("nhs 999 000 0018.", "nhs [NHS]."),
        ("nhs 999-000-0018", "nhs [NHS]"),
        ("invalid too: 9990000017", "invalid too: [NHS]"),
    ],
)
def test_macs_and_nhs_numbers_in_every_spelling_are_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "devEui 24e124707c481005",  # 16 hex digits: an EUI-64, not a MAC
        "urn:uuid:6f1c2a4e-0b7d-4e55-9a3c-1d2e3f4a5b01",
        "2026-10-01T08:00:00.123456789Z",
        "epoch ms 1790841720500",
        "case CV-H-000001 on 15/08/2026",
    ],
)
def test_identifiers_that_are_not_macs_or_nhs_numbers_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_an_epoch_in_seconds_is_over_redacted_on_purpose() -> None:
    assert redact("Timestamp = 1790841600") == "Timestamp = [NHS]"


def test_a_long_raw_record_is_cut_to_the_limit_without_leaking_half_a_number() -> None:
    text = "x" * 19_995 + "9990000018" + "y" * 100

    raw = redacted_raw(text, limit=10_000)

    assert raw == "x" * 10_000
    assert redacted_raw("a" * 19_996 + "9990000018", limit=100) == "a" * 100
    assert redacted_raw("9990000018 " * 3000, limit=30) == "[NHS] [NHS] [NHS] [NHS] "
