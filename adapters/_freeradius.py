"""FreeRADIUS accounting ``detail`` files (rlm_detail), attributes from RFC 2866 and RFC 2869.

A file is a run of records separated by blank lines. Each record starts with the time the
server wrote it (``Thu Oct  1 08:00:00 2026``, server local time) and continues with one
tab-indented ``Attribute = value`` line per attribute; strings are double-quoted::

    Thu Oct  1 08:00:00 2026
    \tAcct-Status-Type = Start
    \tCalling-Station-Id = "AA-BB-CC-DD-EE-FF"
    \tCalled-Station-Id = "11-22-33-44-55-66:CoventryFreeWiFi"
    \tEvent-Timestamp = "Oct  1 2026 08:00:00 UTC"
    \tTimestamp = 1790841600

The event time is ``Event-Timestamp`` (the NAS's clock), else FreeRADIUS's own
``Timestamp`` (epoch seconds). The header line is never used: its time zone is unknown.

Real files are messier than the example: attribute lines indented with spaces, extra
spaces around ``=``, CRLF line ends, vendor attributes no dictionary knows (kept out of the
record, never an error), ``Event-Timestamp`` in BST or as epoch seconds, and a last record
cut off because the file was copied while FreeRADIUS was still writing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from datatrust.errors import RecordError

from ._common import Output, build, read_text, with_raw
from ._records import InvalidField, WifiAccounting
from ._time import parse_timestamp

__all__ = ["read_freeradius_detail"]

_ATTRIBUTE = re.compile(r"^\s+([A-Za-z0-9][A-Za-z0-9:._-]*)\s*=\s*(.*?)\s*$")
_CALLED = re.compile(r"^((?:[0-9A-Fa-f]{2}[-:]){5}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{12})(?::(.*))?$")
_CUT = " (the file ends inside this record: was it copied while FreeRADIUS was writing it?)"


def read_freeradius_detail(
    text: str | bytes, source: str, *, now: datetime | None = None
) -> Iterator[Output]:
    """A ``WifiAccounting`` or a located ``RecordError`` per detail record, in file order."""
    return _records(read_text(text, source), source, now)


def _records(body: str, source: str, now: datetime | None) -> Iterator[Output]:
    lines: list[str] = []
    start = 0
    number = 0
    all_lines = body.splitlines()
    cut = bool(body) and not body.endswith(("\n", "\r"))
    for line_number, line in enumerate([*all_lines, ""], start=1):
        if line.strip():
            if not lines:
                start = line_number
            lines.append(line)
            continue
        if lines:
            number += 1
            is_cut = cut and line_number == len(all_lines) + 1
            output = _record(f"{source}:{start} (record {number})", start, lines, now)
            if is_cut and isinstance(output, RecordError):
                output = RecordError(
                    output.reason + _CUT, location=output.location, **_details(output)
                )
            yield with_raw(output, "\n".join(lines))
            lines = []


def _details(error: RecordError) -> dict[str, object]:
    return {key: value for key, value in error.details.items() if key != "location"}


def _record(location: str, start: int, lines: list[str], now: datetime | None) -> Output:
    if lines[0][:1].isspace():
        return RecordError(
            f"record starts with an attribute line, not a date line: {lines[0].strip()!r}; "
            "each record must begin with the time FreeRADIUS wrote it",
            location=location,
        )
    attributes: dict[str, str] = {}
    for offset, line in enumerate(lines[1:], start=1):
        match = _ATTRIBUTE.match(line)
        if match is None:
            return RecordError(
                f"line {start + offset} is not a tab-indented 'Attribute = value' line: {line!r}",
                location=location,
            )
        name, value = match.groups()
        if value.startswith('"') and (len(value) < 2 or not value.endswith('"')):
            return RecordError(
                f"line {start + offset}: {name} is cut off (no closing quote)",
                location=location,
                field=name,
            )
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        attributes[name] = value
    try:
        return _accounting(location, attributes, now)
    except InvalidField as error:
        return RecordError(str(error), location=location, field=error.field)


def _accounting(location: str, attributes: dict[str, str], now: datetime | None) -> Output:
    for name in (
        "Acct-Status-Type",
        "Acct-Session-Id",
        "Acct-Unique-Session-Id",
        "Calling-Station-Id",
        "Called-Station-Id",
        "NAS-Identifier",
    ):
        if not attributes.get(name):
            fix = (
                "enable the acct_unique policy in preacct"
                if name == "Acct-Unique-Session-Id"
                else "configure the NAS to send it"
            )
            raise InvalidField(name, None, "this attribute is required", fix)
    called = attributes["Called-Station-Id"]
    # RFC 3580 section 3.20: Called-Station-Id is the AP's MAC, then ":" and the SSID.
    match = _CALLED.match(called)
    mac, ssid = (match.group(1), match.group(2)) if match else (called, None)
    return build(
        WifiAccounting,
        location,
        status_type=attributes["Acct-Status-Type"],
        session_id=attributes["Acct-Session-Id"],
        unique_session_id=attributes["Acct-Unique-Session-Id"],
        calling_station_mac=attributes["Calling-Station-Id"],
        called_station_mac=mac,
        ssid=ssid or None,
        nas_identifier=attributes["NAS-Identifier"],
        event_time=_event_time(attributes, now),
        session_time_seconds=_integer(attributes, "Acct-Session-Time"),
        input_octets=_octets(attributes, "Acct-Input-Octets", "Acct-Input-Gigawords"),
        output_octets=_octets(attributes, "Acct-Output-Octets", "Acct-Output-Gigawords"),
    )


def _event_time(attributes: dict[str, str], now: datetime | None) -> datetime:
    for name in ("Event-Timestamp", "Timestamp"):
        if attributes.get(name):
            return parse_timestamp(attributes[name], name, now=now)
    raise InvalidField(
        "Event-Timestamp",
        None,
        "a record needs Event-Timestamp or Timestamp",
        "keep the Timestamp line rlm_detail writes",
    )


def _integer(attributes: dict[str, str], name: str) -> int | None:
    value = attributes.get(name)
    if value is None:
        return None
    if not value.isdigit():
        raise InvalidField(name, value, "must be an unsigned integer (RFC 2866)", "check the NAS")
    return int(value)


def _octets(attributes: dict[str, str], name: str, gigawords: str) -> int | None:
    """Octets plus 2**32 times the RFC 2869 Gigawords counter, when the NAS sends one."""
    low = _integer(attributes, name)
    high = _integer(attributes, gigawords)
    if low is None:
        return None
    return low + (high or 0) * 2**32
