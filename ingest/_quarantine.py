"""Quarantine: bad records kept with their reason, shown redacted, replayable after a fix.

Each quarantined record has a redacted ``raw`` for people to read (``adapters.redact``: no
MAC address, no NHS number, also not in the reason or location) and, when the node has a
quarantine key, ``raw_sealed``: the original, encrypted (see ``_seal``). The original is
either the record's text in its source format (for a record the adapter could not read,
cut out of the file by its location) or the canonical record itself (for a record that
read fine but could not be admitted, e.g. from an unknown device).

:func:`replay_quarantine` reads each sealed original again through its format's adapter
(or rebuilds the canonical record), and loads those that now pass, marking them replayed
in the same transaction; :func:`list_quarantine` is what ``datatrust quarantine list``
shows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from datatrust import adapters
from datatrust.errors import RecordError
from datatrust.store import QuarantinedRecord

__all__ = [
    "MAX_RAW_CHARS",
    "QuarantineEntry",
    "ReplayReport",
    "excerpt",
    "list_quarantine",
    "quarantine_row",
]

MAX_RAW_CHARS = 10_000
_LINE = re.compile(r":(\d+)(?!\d)")


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: int
    source: str
    location: str
    format: str
    reason: str
    raw: str
    quarantined_at: datetime
    replayed_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReplayReport:
    replayed: tuple[int, ...]  # ids loaded now and marked replayed
    still_quarantined: tuple[tuple[int, str], ...]  # (id, why it still fails)


def quarantine_row(
    error: RecordError, source: str, format_name: str, sealed: str | None
) -> dict[str, Any]:
    """The ``quarantined_record`` row of ``error``: every text redacted, the original sealed."""
    return {
        "source": source,
        "location": adapters.redact(error.location),
        "format": format_name,
        "reason": adapters.redact(error.reason),
        "raw": adapters.redact(str(error.details.get("raw", ""))[: MAX_RAW_CHARS * 2])[
            :MAX_RAW_CHARS
        ],
        "raw_sealed": sealed,
        "quarantined_at": datetime.now(UTC),
    }


def excerpt(text: str, location: str, name: str, unit: str | None) -> str | None:
    """The text of the record at ``location`` in the file ``name``, readable on its own.

    ``unit`` is how the format lays out records: ``line`` (NDJSON), ``csv-row`` (the header
    plus the row), ``block`` (FreeRADIUS detail: lines up to a blank one) or ``fhir-entry``
    (the entry in a Bundle with the bundle's Patients). None when the
    format or location gives no line to cut at.
    """
    if unit is None or not location.startswith(name):
        return None
    if unit == "fhir-entry":
        return _fhir_entry(text, location[len(name) :])
    match = _LINE.match(location, len(name))
    if match is None:
        return None
    lines = text.splitlines()
    number = int(match.group(1))
    if not 1 <= number <= len(lines):
        return None
    if unit == "line":
        return lines[number - 1]
    if unit == "csv-row":
        return f"{lines[0]}\n{lines[number - 1]}\n"
    block = []
    for line in lines[number - 1 :]:
        if not line.strip():
            break
        block.append(line)
    return "\n".join(block) + "\n"


def _fhir_entry(text: str, pointer: str) -> str | None:
    """A Bundle of the entry at ``#/entry/N`` plus the bundle's Patients it may refer to."""
    match = re.match(r"#/entry/(\d+)", pointer)
    if match is None:
        return None
    try:
        entries = json.loads(text)["entry"]
        entry = entries[int(match.group(1))]
    except (ValueError, LookupError, TypeError):
        return None
    patients = [
        e
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("resource"), dict)
        and e["resource"].get("resourceType") == "Patient"
        and e is not entry
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [*patients, entry]}
    return json.dumps(bundle, ensure_ascii=False)


def list_quarantine(
    engine: Engine, *, limit: int, format: str | None = None, include_replayed: bool = False
) -> list[QuarantineEntry]:
    """Quarantined records, oldest first (only those not yet replayed, unless asked)."""
    q = QuarantinedRecord
    query = select(
        q.id,
        q.source,
        q.location,
        q.format,
        q.reason,
        q.raw,
        q.quarantined_at,
        q.replayed_at,
    ).order_by(q.id)
    if format is not None:
        query = query.where(q.format == format)
    if not include_replayed:
        query = query.where(q.replayed_at.is_(None))
    with engine.connect() as connection:
        return [QuarantineEntry(*row) for row in connection.execute(query.limit(limit))]


def mark_replayed(connection, ids: list[int]) -> None:
    connection.execute(
        update(QuarantinedRecord)
        .where(QuarantinedRecord.id.in_(ids))
        .values(replayed_at=datetime.now(UTC))
    )
