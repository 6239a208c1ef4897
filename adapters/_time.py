"""Timestamps as real feeds send them, made into aware UTC datetimes, with sanity bounds.

Vendors document one style; real traffic carries several. Accepted here:

- RFC 3339 / ISO 8601 with any number of fractional digits (The Things Stack and ChirpStack
  send nanoseconds), ``T`` or a space between date and time, offset ``Z``, ``+01:00``,
  ``+0100`` or ``+01``;
- a zone abbreviation instead of an offset: ``UTC``, ``GMT`` (+00:00), ``BST`` (+01:00);
- the FreeRADIUS style ``Oct  1 2026 08:00:00 UTC``;
- epoch numbers, as JSON numbers or digit strings: seconds, milliseconds, microseconds or
  nanoseconds, told apart by size (seconds stay below 10**11 until the year 5138);
- a local time with no zone at all. **It is read as Europe/London wall-clock time**, the
  zone of every agency in the trust, and converted to UTC. A local time that does not
  exist (the hour skipped in March) or exists twice (the hour repeated in October) cannot
  be placed and is refused: the sender must add an offset.

Adapters never read a clock. A timestamp before 2000-01-01 is refused always (a device
whose clock reset to 1970, a GPS week rollover); one more than a day after ``now`` is
refused only when the caller passes ``now``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from ._rules import InvalidField

__all__ = ["EARLIEST", "FUTURE_SLACK", "LOCAL_ZONE", "common_timestamp", "parse_timestamp"]

LOCAL_ZONE = ZoneInfo("Europe/London")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?|UTC|GMT|BST)?$"
)
_RADIUS = re.compile(
    r"^([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})\s*(UTC|GMT|BST)?$"
)
# The shapes nearly every real timestamp has, read about ten times faster than the general
# parser below, with exactly its result: RFC 3339 with Z or a whole-minute offset under 24
# hours (The Things Stack, ChirpStack, FHIR), for which ``datetime.fromisoformat`` truncates
# fractions past microseconds just as the general parser does; FreeRADIUS's
# ``Oct  1 2026 08:00:00 UTC``; and epoch seconds written as up to 10 digits. Anything else,
# or a date that does not exist, goes to the general parser, which accepts more and
# explains what it refuses.
_RFC3339_COMMON = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)", re.ASCII
)
_RADIUS_UTC = re.compile(
    r"([A-Z][a-z]{2})  ?(\d\d?) (\d{4}) (\d\d:\d\d:\d\d) (?:UTC|GMT)", re.ASCII
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_DIGITS = {name: f"{number:02d}" for number, name in enumerate(_MONTHS, start=1)}
_ABBREVIATIONS = {"Z": UTC, "z": UTC, "UTC": UTC, "GMT": UTC, "BST": timezone(timedelta(hours=1))}
_STYLES = (
    "RFC 3339 (2026-10-01T08:00:00.123456789Z), a local time (read as Europe/London), "
    "a time with UTC/GMT/BST, or epoch seconds or milliseconds"
)


def parse_timestamp(
    value: Any, field_name: str, *, now: datetime | None = None, earliest: bool = True
) -> datetime:
    """``value`` as an aware UTC datetime (truncated to microseconds), or ``InvalidField``.

    ``earliest=False`` drops the before-2000 rule, for clinical dates such as a condition's
    onset, which can be decades old.
    """
    moment = _common(value) if type(value) is str else None
    if moment is None:
        moment = _parse(value, field_name)
    if earliest and moment < EARLIEST:
        raise InvalidField(
            field_name,
            value,
            "a timestamp before 2000-01-01 is a reset or unset device clock",
            "check the sender's clock and time source",
        )
    if now is not None and moment > now + FUTURE_SLACK:
        raise InvalidField(
            field_name,
            value,
            f"more than a day after the time of reading ({now.astimezone(UTC).isoformat()})",
            "check the sender's clock and time zone",
        )
    return moment


def common_timestamp(value: Any, latest: datetime | None) -> datetime | None:
    """What ``parse_timestamp(value, ..., now=now)`` returns, for a value in a common shape
    that passes its checks (``latest`` is ``now + FUTURE_SLACK``); else ``None``, and
    ``parse_timestamp`` gives the result or the error. For readers' fast paths."""
    moment = _common(value) if type(value) is str else None
    if moment is None or moment < EARLIEST or (latest is not None and moment > latest):
        return None
    return moment


def _common(text: str) -> datetime | None:
    """``text`` in UTC if it has one of the common shapes and is a real time, else ``None``."""
    try:
        if _RFC3339_COMMON.fullmatch(text):
            moment = datetime.fromisoformat(text)
            return moment if moment.tzinfo is UTC else moment.astimezone(UTC)
        if len(text) <= 10 and text.isdigit() and text.isascii():  # under 10**11: seconds
            return datetime.fromtimestamp(int(text), UTC)
        match = _RADIUS_UTC.fullmatch(text)
        if match and match[1] in _MONTH_DIGITS:
            _name, day, year, clock = match.groups()
            month = _MONTH_DIGITS[match[1]]
            return datetime.fromisoformat(f"{year}-{month}-{day:0>2}T{clock}+00:00")
    except ValueError:  # not a real date or time: the general parser says so
        pass
    return None


def _parse(value: Any, field_name: str) -> datetime:
    if isinstance(value, bool):
        raise _invalid(field_name, value)
    if isinstance(value, int | float):
        return _epoch(value, field_name)
    if not isinstance(value, str):
        raise _invalid(field_name, value)
    text = value.strip()
    if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
        return _epoch(int(text), field_name)
    match = _ISO.match(text)
    if match:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        micros = int((fraction or "")[:6].ljust(6, "0"))
        parts = (int(year), int(month), int(day), int(hour), int(minute), int(second or 0))
        return _place(value, field_name, parts, micros, zone)
    match = _RADIUS.match(text)
    if match and match.group(1) in _MONTHS:
        month_name, day, year, hour, minute, second, zone = match.groups()
        parts = (int(year), _MONTHS.index(month_name) + 1, int(day), int(hour), int(minute))
        return _place(value, field_name, (*parts, int(second)), 0, zone)
    raise _invalid(field_name, value)


def _place(
    value: Any, field_name: str, parts: tuple[int, ...], micros: int, zone: str | None
) -> datetime:
    try:
        wall = datetime(*parts, micros)
    except ValueError:
        raise InvalidField(
            field_name, value, "not a real calendar date or time", "check the timestamp"
        ) from None
    if zone is None:
        return _london(value, field_name, wall)
    if zone in _ABBREVIATIONS:
        return wall.replace(tzinfo=_ABBREVIATIONS[zone]).astimezone(UTC)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    if offset >= timedelta(hours=24):
        raise InvalidField(field_name, value, "an offset must be under 24 hours", "fix it")
    return wall.replace(tzinfo=timezone(sign * offset)).astimezone(UTC)


def _london(value: Any, field_name: str, wall: datetime) -> datetime:
    first = wall.replace(tzinfo=LOCAL_ZONE, fold=0)
    second = wall.replace(tzinfo=LOCAL_ZONE, fold=1)
    placed = first.astimezone(UTC)
    if placed.astimezone(LOCAL_ZONE).replace(tzinfo=None) != wall:
        raise InvalidField(
            field_name,
            value,
            "a time without a zone is read as Europe/London, where this time does not exist "
            "(clocks go forward)",
            "send the time with an offset, e.g. +01:00 or Z",
        )
    if first.utcoffset() != second.utcoffset():
        raise InvalidField(
            field_name,
            value,
            "a time without a zone is read as Europe/London, where this hour happens twice "
            "(clocks go back)",
            "send the time with an offset, e.g. +01:00 or Z",
        )
    return placed


def _epoch(number: float, field_name: str) -> datetime:
    if not math.isfinite(number) or number < 0:
        raise _invalid(field_name, number)
    magnitude = abs(number)
    scale = 1 if magnitude < 1e11 else 1e3 if magnitude < 1e14 else 1e6 if magnitude < 1e17 else 1e9
    if isinstance(number, int) and scale > 1:
        whole, rest = divmod(number, int(scale))
        return datetime.fromtimestamp(whole, UTC) + timedelta(microseconds=rest * 1e6 // scale)
    try:
        return datetime.fromtimestamp(number / scale, UTC)
    except (OverflowError, OSError, ValueError):
        raise _invalid(field_name, number) from None


def _invalid(field_name: str, value: Any) -> InvalidField:
    return InvalidField(
        field_name, value, f"not a timestamp; accepted: {_STYLES}", "send the time in one of those"
    )
