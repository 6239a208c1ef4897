from datetime import UTC, datetime

import pytest

from datatrust.adapters import InvalidField, parse_timestamp

OCT_1_8AM = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2026-10-01T08:00:00Z",
        "2026-10-01T08:00:00.000000000Z",  # nanoseconds, as The Things Stack sends
        "2026-10-01T09:00:00+01:00",
        "2026-10-01T09:00:00+0100",
        "2026-10-01 08:00:00 UTC",
        "2026-10-01 08:00:00 GMT",
        "2026-10-01 09:00:00 BST",
        "Oct  1 2026 08:00:00 UTC",  # FreeRADIUS Event-Timestamp
        "2026-10-01T09:00:00",  # no zone: Europe/London, BST in October
        "2026-10-01 09:00",
        1790841600,  # epoch seconds
        "1790841600",
        1790841600000,  # epoch milliseconds
        1790841600000000000,  # epoch nanoseconds
    ],
)
def test_every_timestamp_style_real_feeds_send_is_the_same_instant(value: object) -> None:
    assert parse_timestamp(value, "t") == OCT_1_8AM


def test_a_zone_less_winter_time_is_gmt() -> None:
    assert parse_timestamp("2026-12-01T08:00:00", "t") == datetime(2026, 12, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("2026-10-25T01:30:00", "where this hour happens twice (clocks go back)"),
        ("2026-03-29T01:30:00", "where this time does not exist (clocks go forward)"),
        ("1999-12-31T23:59:59Z", "a timestamp before 2000-01-01 is a reset or unset device clock"),
        (0, "a timestamp before 2000-01-01 is a reset or unset device clock"),
        ("yesterday", "not a timestamp; accepted: RFC 3339"),
        ("2026-02-30T08:00:00Z", "not a real calendar date or time"),
        (True, "not a timestamp"),
    ],
)
def test_timestamps_that_cannot_be_placed_name_the_rule(value: object, rule: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_timestamp(value, "/time")

    assert caught.value.field == "/time"
    assert rule in caught.value.rule


def test_the_future_is_checked_only_against_a_now_passed_in() -> None:
    now = datetime(2026, 10, 1, tzinfo=UTC)

    assert parse_timestamp("2026-10-01T23:59:00Z", "t", now=now)
    with pytest.raises(InvalidField, match=r"more than a day after the time of reading"):
        parse_timestamp("2026-10-02T00:00:01Z", "t", now=now)
    assert parse_timestamp("2030-01-01T00:00:00Z", "t") == datetime(2030, 1, 1, tzinfo=UTC)
