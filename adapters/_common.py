"""What every adapter shares: reading the input, timestamps, CSV rows and located errors."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any

from datatrust.errors import RecordError, SourceError

from ._records import InvalidField, Record
from ._redact import redacted_raw

__all__ = ["Output", "Unusual", "build", "csv_records", "parse_date", "read_text", "with_raw"]

Output = Record | RecordError

MAX_INPUT_BYTES = 256 * 1024 * 1024


class Unusual(Exception):  # not an error: a signal to take the general path
    """A reader's fast path met something it does not expect: use the general path.

    Readers with a fast path (LoRaWAN uplinks, FreeRADIUS records) keep their general path
    as the one that decides: the fast path only builds the record the general path would
    build, for input in the common shape, and gives up on anything else.
    """


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


def with_raw(output: Output, raw: str) -> Output:
    """``output``; a ``RecordError`` also gets ``raw=``, the record's redacted text."""
    if isinstance(output, RecordError) and "raw" not in output.details:
        output.details["raw"] = redacted_raw(raw)
    return output


def build(factory: Callable[..., Record], location: str, **fields: Any) -> Output:
    """The record, or a located error naming the field that broke its rule."""
    try:
        return factory(**fields)
    except InvalidField as error:
        return RecordError(str(error), location=location, field=error.field)


def csv_records(
    text: str, source: str, required: Sequence[str], make: Callable[[str, dict[str, str]], Output]
) -> Iterator[Output]:
    """``make(location, row)`` for each data row, with ``raw=`` on every error.

    The header must name every required column; names are matched ignoring case,
    surrounding spaces and space-versus-underscore, so ``Event Start Date`` and
    ``event_start_date`` are the same column. Columns the reader does not know are ignored;
    a row with more values than the header has columns is an error (a stray comma shifts
    every value after it).
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
    return _rows(reader, names, source, make)


def _rows(
    reader: Any, names: list[str], source: str, make: Callable[[str, dict[str, str]], Output]
) -> Iterator[Output]:
    for values in reader:
        if not any(value.strip() for value in values):
            continue
        location = f"{source}:{reader.line_num}"
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(values)
        if len(values) > len(names):
            yield with_raw(
                RecordError(
                    f"row has {len(values)} values but the header names {len(names)} columns; "
                    "quote values that contain commas",
                    location=location,
                ),
                out.getvalue(),
            )
            continue
        row = {
            name: (values[index].strip() if index < len(values) else "")
            for index, name in enumerate(names)
        }
        yield with_raw(make(location, row), out.getvalue())


def _column(name: str) -> str:
    return re.sub(r"[\s_]+", "_", name.strip().lower())
