"""Replaying quarantine: records that failed before are read again, and loaded if they pass.

After a codec or mapping fix, or once a device is registered in the sensor inventory,
``datatrust quarantine replay`` takes each quarantined record's sealed original, reads it
through its format's adapter (or rebuilds the canonical record that was refused), and
loads it through the same admission and ``write_rows`` as any ingest. A record that now
loads is marked ``replayed_at`` in the same transaction as its rows, so a replay run twice
loads it once. One that still fails stays quarantined, and the report says why.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, select

from datatrust import adapters
from datatrust.errors import DatatrustError, RecordError
from datatrust.ingest._formats import FORMATS
from datatrust.ingest._load import write_rows
from datatrust.ingest._pipeline import admit, writing
from datatrust.ingest._pseudonymise import Pseudonymiser
from datatrust.ingest._quarantine import ReplayReport, mark_replayed
from datatrust.ingest._rows import rows_of
from datatrust.ingest._seal import record_from_payload
from datatrust.store import QuarantinedRecord

__all__ = ["replay_quarantine"]


def replay_quarantine(
    engine: Engine, pseudonymiser: Pseudonymiser, *, ids: Sequence[int] | None = None
) -> ReplayReport:
    """Replay the quarantined records ``ids`` (default: all not yet replayed)."""
    q = QuarantinedRecord
    query = select(q.id, q.source, q.location, q.format, q.raw, q.raw_sealed).where(
        q.replayed_at.is_(None)
    )
    if ids is not None:
        query = query.where(q.id.in_(list(ids)))
    with engine.connect() as connection:
        entries = connection.execute(query.order_by(q.id)).all()
    replayed: list[int] = []
    failing: list[tuple[int, str]] = []
    known: set[str] = set()
    for entry_id, source, location, format_name, raw, sealed in entries:
        items = _read_again(format_name, location, raw, sealed, pseudonymiser)
        errors = [item for item in items if isinstance(item, RecordError)]
        if errors or not items:
            reason = errors[0].reason if errors else "nothing to replay: no record was kept"
            failing.append((entry_id, adapters.redact(reason)))
            continue
        with writing(engine) as connection:  # reads, then writes: a writer from the start
            records, refused = admit(connection, items, source, known)
            if refused:
                failing.append((entry_id, adapters.redact(refused[0][1].reason)))
                continue
            write_rows(connection, rows_of(records, pseudonymiser))
            mark_replayed(connection, [entry_id])
        replayed.append(entry_id)
    return ReplayReport(tuple(replayed), tuple(failing))


def _read_again(
    format_name: str,
    location: str,
    raw: str,
    sealed: str | None,
    pseudonymiser: Pseudonymiser,
) -> list[object]:
    """The records (or errors) the quarantined original reads as today."""
    if sealed is None:
        payload: dict = {"text": raw}  # only the redacted copy survives
    else:
        try:
            payload = pseudonymiser.sealer.unseal(sealed)
        except Exception:
            return [
                RecordError(
                    "the sealed original cannot be opened with this node's quarantine key",
                    location=location,
                )
            ]
    if "record" in payload:
        return [record_from_payload(payload, location)]
    source_format = FORMATS.get(format_name)
    if source_format is None:
        return [RecordError(f"no format {format_name!r} is known", location=location)]
    try:
        return list(source_format.read(payload["text"], location.split(":")[0]))
    except DatatrustError as error:
        return [RecordError(error.message, location=location)]
