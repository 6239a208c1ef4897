"""File ingest: a source file through its adapter into the node's store, nothing lost.

Each file is one batch, identified by its SHA-256 and format: a batch already loaded is
skipped, so ``datatrust up`` and repeated ``datatrust ingest`` never duplicate data. A
batch is written in chunks, each chunk's rows and quarantined records in one transaction;
a batch interrupted part-way is resumed by loading it again (rows are idempotent and the
unfinished batch's quarantine entries are replaced). Bad records are quarantined with the
adapter's located reason; they are never dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from datatrust.errors import DatatrustError, RecordError
from datatrust.ingest._formats import SourceFormat
from datatrust.ingest._load import write_rows
from datatrust.ingest._pseudonymise import Pseudonymiser
from datatrust.ingest._rows import rows_of
from datatrust.store import IngestBatch, QuarantinedRecord, refresh_statistics

__all__ = ["IngestReport", "ingest_file", "load_items"]

CHUNK_RECORDS = 2000
MAX_RAW_CHARS = 10_000


@dataclass(frozen=True, slots=True)
class IngestReport:
    source: str
    format: str
    status: str  # "loaded" | "skipped" | "failed"
    records_loaded: int
    records_quarantined: int


def ingest_file(
    engine: Engine,
    path: Path,
    source_format: SourceFormat,
    pseudonymiser: Pseudonymiser,
    *,
    on_progress: Callable[[int], None] = lambda records: None,
) -> IngestReport:
    """Load ``path`` (read by ``source_format``'s adapter) into the store behind ``engine``."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    source = str(path)
    batch_id, resumed_from = _open_batch(engine, source, digest, source_format.name)
    if batch_id is None:
        return IngestReport(source, source_format.name, "skipped", 0, 0)
    if resumed_from is not None:
        _forget_quarantine(engine, source, source_format.name, resumed_from)

    status = "done"
    try:
        items: Iterable[object] = source_format.read(_decode(data, path.name), path.name)
        report = load_items(
            engine,
            items,
            source=source,
            format_name=source_format.name,
            pseudonymiser=pseudonymiser,
            on_progress=on_progress,
        )
        loaded, quarantined = report.records_loaded, report.records_quarantined
    except DatatrustError as error:
        whole = (
            error
            if isinstance(error, RecordError)
            else RecordError(error.message, location=path.name)
        )
        load_items(
            engine,
            [whole],
            source=source,
            format_name=source_format.name,
            pseudonymiser=pseudonymiser,
        )
        loaded, quarantined = 0, 1
        status = "failed"
    with engine.begin() as connection:
        connection.execute(
            update(IngestBatch)
            .where(IngestBatch.id == batch_id)
            .values(
                finished_at=datetime.now(UTC),
                records_loaded=loaded,
                records_quarantined=quarantined,
                status=status,
            )
        )
    if loaded:
        refresh_statistics(engine)
    return IngestReport(
        source, source_format.name, "loaded" if status == "done" else status, loaded, quarantined
    )


def load_items(
    engine: Engine,
    items: Iterable[object],
    *,
    source: str,
    format_name: str,
    pseudonymiser: Pseudonymiser,
    on_progress: Callable[[int], None] = lambda records: None,
) -> IngestReport:
    """Load adapter output (records and RecordErrors, in order) in chunked transactions.

    The one loading path of every source (files, webhooks, MQTT): each chunk's rows and
    quarantined records commit together, so a crash loses at most the chunk in flight and a
    replay of it duplicates nothing.
    """
    loaded = quarantined = 0
    for chunk in _chunks(iter(items), CHUNK_RECORDS):
        records = [item for item in chunk if not isinstance(item, RecordError)]
        errors = [item for item in chunk if isinstance(item, RecordError)]
        with engine.begin() as connection:
            if records:
                write_rows(connection, rows_of(records, pseudonymiser))
            if errors:
                connection.execute(
                    insert(QuarantinedRecord),
                    [_quarantine_row(e, source, format_name) for e in errors],
                )
        loaded += len(records)
        quarantined += len(errors)
        on_progress(len(chunk))
    return IngestReport(source, format_name, "loaded", loaded, quarantined)


def _open_batch(
    engine: Engine, source: str, digest: str, format_name: str
) -> tuple[int | None, datetime | None]:
    """(batch id to load into, start of an unfinished earlier attempt), or (None, None)."""
    with engine.begin() as connection:
        existing = connection.execute(
            select(IngestBatch.id, IngestBatch.status, IngestBatch.started_at).where(
                IngestBatch.sha256 == digest, IngestBatch.format == format_name
            )
        ).first()
        now = datetime.now(UTC)
        if existing is None:
            result = connection.execute(
                insert(IngestBatch).values(
                    source=source,
                    sha256=digest,
                    format=format_name,
                    started_at=now,
                    records_loaded=0,
                    records_quarantined=0,
                    status="running",
                )
            )
            return result.inserted_primary_key[0], None
        batch_id, status, started_at = existing
        if status in ("done", "failed"):
            return None, None
        connection.execute(
            update(IngestBatch).where(IngestBatch.id == batch_id).values(started_at=now)
        )
        return batch_id, started_at


def _forget_quarantine(engine: Engine, source: str, format_name: str, since: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            delete(QuarantinedRecord).where(
                QuarantinedRecord.source == source,
                QuarantinedRecord.format == format_name,
                QuarantinedRecord.quarantined_at >= since,
            )
        )


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RecordError(
            f"file is not UTF-8 (byte {error.start} is {data[error.start]:#04x}); "
            "re-export it as UTF-8",
            location=f"{name}:byte {error.start}",
        ) from error


def _quarantine_row(error: RecordError, source: str, format_name: str) -> dict[str, Any]:
    raw = error.details.get("raw", "")
    return {
        "source": source,
        "location": error.location,
        "format": format_name,
        "reason": error.reason,
        "raw": str(raw)[:MAX_RAW_CHARS],
        "quarantined_at": datetime.now(UTC),
    }


def _chunks(items: Iterator[object], size: int) -> Iterator[list[object]]:
    while chunk := list(islice(items, size)):
        yield chunk
