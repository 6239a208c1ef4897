"""File ingest: a source file through its adapter into the node's store, nothing lost.

Each file is one batch, identified by its SHA-256 and format: a batch already loaded is
skipped, so ``datatrust up`` and repeated ``datatrust ingest`` never duplicate data. A
batch is written in chunks, each chunk's rows and quarantined records in one transaction;
a batch interrupted part-way is resumed by loading it again (rows are idempotent and the
unfinished batch's quarantine entries are replaced). Bad records are quarantined with the
adapter's located reason; they are never dropped.

Every write transaction here takes SQLite's write lock when it begins (``writing``): a
chunk reads (the sensor inventory) before it writes, and in WAL mode a deferred
transaction whose snapshot another writer (the node's audit ledger, a consent change)
has moved past cannot upgrade to a writer; SQLite says "database is locked" at once,
whatever the busy timeout, and the load would stop.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from datatrust._metrics import ingest_observed
from datatrust.errors import DatatrustError, RecordError
from datatrust.ingest._formats import SourceFormat
from datatrust.ingest._load import write_rows
from datatrust.ingest._pseudonymise import Pseudonymiser
from datatrust.ingest._quarantine import excerpt, quarantine_row
from datatrust.ingest._rows import rows_of
from datatrust.ingest._seal import record_payload
from datatrust.store import (
    BEGIN_IMMEDIATE,
    IngestBatch,
    QuarantinedRecord,
    Sensor,
    refresh_statistics,
)

__all__ = ["IngestReport", "admit", "ingest_file", "load_items", "writing"]

# Records per transaction. 5,000 uplinks (~17,500 readings) measured a little faster than
# 2,000 on PostgreSQL (fewer commits and round trips); a crash redoes at most one chunk.
CHUNK_RECORDS = 5000


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
        text = _decode(data, path.name)
        items = _with_originals(
            source_format.read(text, path.name), text, path.name, source_format.raw_unit
        )
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
    with writing(engine) as connection:
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
    replay of it duplicates nothing. A reading from a device the sensor inventory does not
    know is quarantined, not loaded (its area, and so every statistic over it, is unknown).
    """
    with _collector_paused():
        return _load_chunks(engine, items, source, format_name, pseudonymiser, on_progress)


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A connection in one transaction that commits at the end; a writer from its start.

    On SQLite the transaction begins with BEGIN IMMEDIATE, so it waits (up to the busy
    timeout) for the write lock before it reads anything, instead of failing when it first
    writes after another writer committed. PostgreSQL ignores the option.
    """
    with engine.connect() as connection:
        connection.execution_options(**{BEGIN_IMMEDIATE: True})
        with connection.begin():
            yield connection


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a load runs.

    Parsing allocates millions of short-lived, acyclic objects (records, dicts, datetimes)
    that reference counting frees at once; the collector's generation-0 passes over them
    cost ~2 us an uplink (measured) and find nothing. Collection resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load_chunks(
    engine: Engine,
    items: Iterable[object],
    source: str,
    format_name: str,
    pseudonymiser: Pseudonymiser,
    on_progress: Callable[[int], None],
) -> IngestReport:
    loaded = quarantined = 0
    known: set[str] = set()
    for chunk in _chunks(iter(items), CHUNK_RECORDS):
        records = [item for item in chunk if not isinstance(item, RecordError)]
        errors = [item for item in chunk if isinstance(item, RecordError)]
        with writing(engine) as connection:
            records, refused = admit(connection, records, source, known)
            if records:
                write_rows(connection, rows_of(records, pseudonymiser))
            if errors or refused:
                connection.execute(
                    insert(QuarantinedRecord),
                    [_quarantine(e, source, format_name, pseudonymiser) for e in errors]
                    + [
                        quarantine_row(e, source, format_name, _seal_record(r, pseudonymiser))
                        for r, e in refused
                    ],
                )
        loaded += len(records)
        quarantined += len(errors) + len(refused)
        ingest_observed(engine, source, format_name, len(records), len(errors) + len(refused))
        on_progress(len(chunk))
    return IngestReport(source, format_name, "loaded", loaded, quarantined)


def admit(
    connection: Connection, records: list[object], source: str, known: set[str]
) -> tuple[list[object], list[tuple[object, RecordError]]]:
    """``records`` split into those to load and (record, reason) for those refused.

    ``known`` caches the devices found in the sensor inventory (they are never removed).
    """
    devices = {r.device_id for r in records if type(r).__name__ == "SensorUplink"} - known
    if devices:
        known.update(
            connection.execute(
                select(Sensor.device_id).where(Sensor.device_id.in_(sorted(devices)))
            ).scalars()
        )
    if not devices - known:
        return records, []
    admitted: list[object] = []
    refused: list[tuple[object, RecordError]] = []
    for record in records:
        if type(record).__name__ == "SensorUplink" and record.device_id not in known:
            received = record.received_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            refused.append(
                (
                    record,
                    RecordError(
                        f"unknown device {record.device_id}: register it in the sensor "
                        "inventory first",
                        location=f"{source}: uplink received {received}",
                        field="device_id",
                    ),
                )
            )
        else:
            admitted.append(record)
    return admitted, refused


def _quarantine(
    error: RecordError, source: str, format_name: str, pseudonymiser: Pseudonymiser
) -> dict[str, Any]:
    original = error.details.get("original") or error.details.get("raw")
    sealed = pseudonymiser.sealer.seal({"text": original}) if original else None
    return quarantine_row(error, source, format_name, sealed)


def _seal_record(record: object, pseudonymiser: Pseudonymiser) -> str:
    return pseudonymiser.sealer.seal(record_payload(record))


def _open_batch(
    engine: Engine, source: str, digest: str, format_name: str
) -> tuple[int | None, datetime | None]:
    """(batch id to load into, start of an unfinished earlier attempt), or (None, None)."""
    with writing(engine) as connection:
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
    with writing(engine) as connection:
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


def _with_originals(
    items: Iterable[object], text: str, name: str, unit: str | None
) -> Iterator[object]:
    """Each RecordError gets ``original``: its record's unredacted text, for sealing."""
    for item in items:
        if isinstance(item, RecordError) and "original" not in item.details:
            original = excerpt(text, item.location, name, unit)
            if original is not None:
                item.details["original"] = original
        yield item


def _chunks(items: Iterator[object], size: int) -> Iterator[list[object]]:
    while chunk := list(islice(items, size)):
        yield chunk
