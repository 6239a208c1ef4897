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

Most records take a fast path (``_common_record``): tab-indented ``Name = value`` lines with
nothing odd about them, split with string methods rather than a regular expression per line.
The fast path never decides anything on its own: at the first thing it does not expect it
gives up (``Unusual``), and the record is read by the general path (``_record``), which
accepts it or says exactly what is wrong. So both give the same record, and every error
comes from the general path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Generator, Iterator
from datetime import datetime
from itertools import islice, repeat

from datatrust.errors import RecordError

from ._common import Output, Unusual, build, read_text, with_raw
from ._records import InvalidField, WifiAccounting
from ._time import FUTURE_SLACK, common_timestamp, parse_timestamp

__all__ = ["read_freeradius_detail"]

_ATTRIBUTE = re.compile(r"^\s+([A-Za-z0-9][A-Za-z0-9:._-]*)\s*=\s*(.*?)\s*$")
_CALLED = re.compile(r"^((?:[0-9A-Fa-f]{2}[-:]){5}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{12})(?::(.*))?$")
_CUT = " (the file ends inside this record: was it copied while FreeRADIUS was writing it?)"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._-]*")
_REQUIRED = (  # in the order of WifiAccounting's fields
    "Acct-Status-Type",
    "Acct-Session-Id",
    "Acct-Unique-Session-Id",
    "Calling-Station-Id",
    "Called-Station-Id",
    "NAS-Identifier",
)
# Line ends str.splitlines knows besides LF and CR.
_OTHER_LINE_ENDS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def read_freeradius_detail(
    text: str | bytes, source: str, *, now: datetime | None = None
) -> Iterator[Output]:
    """A ``WifiAccounting`` or a located ``RecordError`` per detail record, in file order."""
    return _records(read_text(text, source), source, now)


def _records(body: str, source: str, now: datetime | None) -> Iterator[Output]:
    """Each record in ``body``; the blank-line-separated chunks of a file whose only line
    ends are LF or CRLF are tried on the fast path first, and read line by line if not."""
    cut = bool(body) and not body.endswith(("\n", "\r"))
    text = body.replace("\r\n", "\n") if "\r" in body else body  # CRLF: the same lines
    if any(mark in text for mark in _OTHER_LINE_ENDS):  # a lone CR and the like
        yield from _by_lines(body.splitlines(), 1, 0, source, now, cut)
        return
    latest = None if now is None else now + FUTURE_SLACK
    chunks = text.split("\n\n")
    line_number, number = 1, 0
    for index, chunk in enumerate(chunks):
        try:
            record = _common_record(chunk.strip("\n"), latest)
        except (Unusual, InvalidField):  # empty, several records, or unusual: line by line
            lines = chunk.split("\n")
            is_last = index == len(chunks) - 1
            number = yield from _by_lines(lines, line_number, number, source, now, cut and is_last)
        else:
            number += 1
            yield record
        line_number += chunk.count("\n") + 2


def _by_lines(
    lines: list[str], first: int, number: int, source: str, now: datetime | None, cut: bool
) -> Generator[Output, None, int]:
    """The records in ``lines`` (numbered from line ``first`` and after record ``number``)
    read by the general path; returns the number of the last record. ``cut``: the input
    ends inside the last line."""
    record: list[str] = []
    start = 0
    for line_number, line in enumerate([*lines, ""], start=first):
        if line.strip():
            if not record:
                start = line_number
            record.append(line)
            continue
        if record:
            number += 1
            is_cut = cut and line_number == first + len(lines)
            output = _record(f"{source}:{start} (record {number})", start, record, now)
            if is_cut and isinstance(output, RecordError):
                output = RecordError(
                    output.reason + _CUT, location=output.location, **_details(output)
                )
            yield with_raw(output, "\n".join(record))
            record = []
    return number


def _common_record(chunk: str, latest: datetime | None) -> WifiAccounting:
    """The record ``_record`` would make of ``chunk`` (one record's lines, LF-separated) if
    it is in the common shape, else ``Unusual`` (or ``InvalidField``)."""
    lines = chunk.split("\n\t")  # the date line, then each attribute line without its tab
    if chunk.count("\n") != len(lines) - 1 or not chunk or chunk[0].isspace():
        raise Unusual  # a line not indented by one tab, a blank line, or no date line
    try:
        attributes = dict(map(str.split, islice(lines, 1, None), repeat(" = "), repeat(1)))
    except ValueError:  # a line without " = "
        raise Unusual from None
    if len(attributes) != len(lines) - 1 or not all(map(_is_name, attributes)):
        raise Unusual  # a repeated attribute, or a name the general path must judge
    for name, value in attributes.items():
        if value[:1] == '"':
            if len(value) < 2 or value[-1] != '"':
                raise Unusual  # a quote left open
            value = value[1:-1]
            if "\\" in value:
                value = value.replace('\\"', '"').replace("\\\\", "\\")
            attributes[name] = value
        elif value.strip() is not value:
            raise Unusual  # spaces around the value: it must be stripped
    get = attributes.get
    required = [get(name) for name in _REQUIRED]
    if not all(required):
        raise Unusual
    status, session, unique, calling, called, nas = required
    match = _CALLED.match(called)
    mac, ssid = (match.group(1), match.group(2)) if match else (called, None)
    event_time = common_timestamp(get("Event-Timestamp") or get("Timestamp"), latest)
    if event_time is None:
        raise Unusual
    return WifiAccounting(
        status_type=status,
        session_id=session,
        unique_session_id=unique,
        calling_station_mac=calling,
        called_station_mac=mac,
        ssid=ssid or None,
        nas_identifier=nas,
        event_time=event_time,
        session_time_seconds=_plain_integer(get("Acct-Session-Time")),
        input_octets=_plain_octets(get("Acct-Input-Octets"), get("Acct-Input-Gigawords")),
        output_octets=_plain_octets(get("Acct-Output-Octets"), get("Acct-Output-Gigawords")),
    )


@functools.lru_cache(maxsize=1024)
def _is_name(name: str) -> bool:
    """Cached: a file uses a few dozen attribute names."""
    return _NAME.fullmatch(name) is not None


def _plain_integer(value: str | None) -> int | None:
    if value is None:
        return None
    if not (value.isdigit() and value.isascii()):
        raise Unusual
    return int(value)


def _plain_octets(low_text: str | None, high_text: str | None) -> int | None:
    low = _plain_integer(low_text)
    high = _plain_integer(high_text)
    if low is None:
        return None
    return low + (high or 0) * 2**32


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
    for name in _REQUIRED:
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
