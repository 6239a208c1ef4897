"""What every adapter shares: reading the input, timestamps, CSV rows and located errors."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from datatrust.errors import RecordError, SourceError

from ._records import InvalidField, Record

__all__ = ["Output", "build", "csv_rows", "parse_date", "parse_rfc3339", "read_text"]

Output = Record | RecordError

# RFC 3339 with any number of fractional digits (The Things Stack sends nanoseconds).
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)
MAX_INPUT_BYTES = 256 * 1024 * 1024


def read_text(data: str | bytes, source: str) -> str:
    """The input as text; bytes must be UTF-8 (a byte order mark is dropped)."""
    if isinstance(data, str):
        text = data
    else:
        if len(data) > MAX_INPUT_BYTES:
            raise SourceError(
                f"{source}: {len(data)} bytes is over the {MAX_INPUT_BYTES} byte limit; "
                "split the file",
                location=source,
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SourceError(
                f"{source}: not UTF-8 text (byte {error.start}); re-export it as UTF-8",
                location=source,
            ) from error
    return text.removeprefix("\ufeff")


def parse_rfc3339(value: Any, field_name: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime, truncated to microseconds."""
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidField(
            field_name,
            value,
            "timestamps must be RFC 3339 with an offset, e.g. 2026-10-01T08:00:00.123456789Z",
            "send the time in RFC 3339 form",
        )
    day, clock, fraction, offset = match.groups()
    micros = (fraction or "")[:6].ljust(6, "0")
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        parsed = datetime.fromisoformat(f"{day}T{clock}.{micros}{offset}")
    except ValueError:
        raise InvalidField(
            field_name, value, "not a real calendar date or time", "check the timestamp"
        ) from None
    return parsed.astimezone(UTC)


def parse_date(value: str, field_name: str) -> date:
    """A calendar date written YYYY-MM-DD or DD/MM/YYYY."""
    text = value.strip()
    try:
        if "/" in text:
            day, month, year = text.split("/")
            return date(int(year), int(month), int(day))
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidField(
            field_name, value, "dates are YYYY-MM-DD (or DD/MM/YYYY)", "write e.g. 2026-10-01"
        ) from None


def build(factory: Callable[..., Record], location: str, **fields: Any) -> Output:
    """The record, or a located error naming the field that broke its rule."""
    try:
        return factory(**fields)
    except InvalidField as error:
        return RecordError(str(error), location=location, field=error.field)


def csv_rows(
    text: str, source: str, required: Sequence[str]
) -> Iterator[tuple[str, dict[str, str]]]:
    """``(location, row)`` for each data row; the header must name every required column.

    Header names are matched ignoring case, surrounding spaces and space-versus-underscore,
    so ``Event Start Date`` and ``event_start_date`` are the same column.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise SourceError(f"{source}: the file is empty; expected a header row", location=source)
    names = [_column(name) for name in header]
    missing = [name for name in required if _column(name) not in names]
    if missing:
        raise SourceError(
            f"{source}:1: the header lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(header)}",
            location=f"{source}:1",
        )
    return _rows(reader, names, source)


def _rows(reader: Any, names: list[str], source: str) -> Iterator[tuple[str, dict[str, str]]]:
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        location = f"{source}:{reader.line_num}"
        yield (
            location,
            {
                name: (values[index].strip() if index < len(values) else "")
                for index, name in enumerate(names)
            },
        )


def _column(name: str) -> str:
    return re.sub(r"[\s_]+", "_", name.strip().lower())
