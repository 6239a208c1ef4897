"""What ``datatrust ingest`` and ``datatrust quarantine`` do, behind their typer declarations.

Files: each PATH (a directory stands for the files directly in it, sorted by name) goes
through :func:`~datatrust.ingest.ingest_file` under a rich progress bar showing records,
rate and quarantined count, then a summary table. MQTT: the subscriber runs in the
foreground until SIGINT or SIGTERM, logging counts (never payloads) as batches commit.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from datatrust.errors import SettingsError
from datatrust.settings import NODE_IDS, NodeSettings, load_settings

__all__ = [
    "LIVE_TOPICS",
    "expand_paths",
    "ingest_files",
    "list_quarantined",
    "node_settings",
    "replay_quarantined",
    "subscribe",
    "subscriber_client_id",
]

LIVE_TOPICS = ("v3/+/devices/+/up", "application/+/device/+/event/up")
PROGRESS_LOG_SECONDS = 5.0


def node_settings(
    node: str, data_dir: Path, database_url: str | None = None, config: Path | None = None
) -> NodeSettings:
    """The node's settings: from its settings file when given (a deployment, where the
    store's password is a mounted file), else its SQLite store in ``data_dir``."""
    if config is not None:
        settings = load_settings(
            NodeSettings, toml_path=config, environ={}, database_url=database_url
        )
        if settings.node_id != node:
            raise SettingsError(
                f"--node {node} but {config} is the settings of node {settings.node_id}"
            )
        return settings
    return load_settings(
        NodeSettings,
        environ={},
        node_id=node,
        agency=node,
        data_dir=data_dir,
        database_url=database_url,
    )


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given; a directory becomes the files directly in it, sorted by name."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not found:
                raise SettingsError(f"directory {path} holds no files to ingest")
            files += found
        else:
            files.append(path)
    return files


def _store(settings: NodeSettings):
    from datatrust.store import create_store_engine, migrate

    engine = create_store_engine(settings.effective_database_url)
    migrate(engine)
    return engine


def ingest_files(
    console: Console, format_name: str, paths: list[Path], settings: NodeSettings
) -> int:
    """Load ``paths``; print progress and a summary; the number of records quarantined."""
    from datatrust._prepare import node_pseudonymiser
    from datatrust.ingest import ingest_file, source_format

    chosen = source_format(format_name, node_id=settings.node_id)
    files = expand_paths(paths)
    engine = _store(settings)
    pseudonymiser = node_pseudonymiser(settings.data_dir, settings.node_id)
    reports = []
    started = time.perf_counter()
    records = quarantined = 0
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "{task.fields[records]} records · {task.fields[rate]:,.0f}/s · "
                "{task.fields[quarantined]} quarantined"
            ),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(
                f"{format_name} → {settings.node_id}",
                total=len(files),
                records=0,
                rate=0.0,
                quarantined=0,
            )

            def advance(count: int) -> None:
                nonlocal records
                records += count
                rate = records / max(time.perf_counter() - started, 1e-6)
                progress.update(task, records=records, rate=rate)

            for path in files:
                report = ingest_file(engine, path, chosen, pseudonymiser, on_progress=advance)
                reports.append((path, report))
                quarantined += report.records_quarantined
                progress.update(task, advance=1, quarantined=quarantined)
    finally:
        engine.dispose()
    _summary(console, reports, time.perf_counter() - started)
    return quarantined


def _summary(console: Console, reports: list, seconds: float) -> None:
    table = Table(title=f"ingest summary ({seconds:.1f} s)")
    for column in ("file", "status", "loaded", "quarantined"):
        table.add_column(column, justify="right" if column in ("loaded", "quarantined") else "left")
    for path, report in reports:
        table.add_row(
            str(path), report.status, str(report.records_loaded), str(report.records_quarantined)
        )
    loaded = sum(r.records_loaded for _, r in reports)
    quarantined = sum(r.records_quarantined for _, r in reports)
    table.add_row(f"{len(reports)} file(s)", "", str(loaded), str(quarantined), style="bold")
    console.print(table)


def subscriber_client_id(node: str, data_dir: Path) -> str:
    """Stable per node and data directory, so a restarted subscriber resumes its session."""
    from datatrust.ingest import mqtt_client_id

    key = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    return mqtt_client_id(node, key)


def subscribe(
    console: Console,
    settings: NodeSettings,
    broker: str,
    topics: list[str],
    *,
    client_id: str | None = None,
    session_expiry_seconds: int = 86_400,
) -> None:
    """Run the MQTT subscriber in the foreground until SIGINT or SIGTERM."""
    from datatrust._prepare import node_pseudonymiser
    from datatrust.ingest import MqttIngest, MqttTotals, broker_address

    broker_address(broker)  # refuse a bad URL before touching the store
    if not topics:
        raise SettingsError("no topic to subscribe to; give at least one --topic")
    from datatrust._logs import configure_logging

    configure_logging("json")  # a long-running service, logged as `serve` logs (JSON lines)
    engine = _store(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    last = [time.monotonic()]
    log = logging.getLogger("datatrust.ingest.mqtt")

    def on_batch(totals: MqttTotals) -> None:
        if time.monotonic() - last[0] >= PROGRESS_LOG_SECONDS:
            last[0] = time.monotonic()
            log.info(
                "%d message(s): %d record(s) loaded, %d quarantined",
                totals.messages,
                totals.loaded,
                totals.quarantined,
            )

    subscriber = MqttIngest(
        engine=engine,
        pseudonymiser=node_pseudonymiser(settings.data_dir, settings.node_id),
        broker=broker,
        topics=tuple(topics),
        client_id=client_id or subscriber_client_id(settings.node_id, settings.data_dir),
        session_expiry_seconds=session_expiry_seconds,
        drain_seconds=0.5,
        on_batch=on_batch,
    )
    console.print(
        f"Subscribing {settings.node_id} to {', '.join(topics)} at {broker} "
        f"as {subscriber.client_id} (QoS 1). Ctrl-C to stop.",
        highlight=False,
    )
    try:
        totals = subscriber.run(stop)
    finally:
        engine.dispose()
    console.print(
        f"Stopped: {totals.messages} message(s), {totals.loaded} record(s) loaded, "
        f"{totals.quarantined} quarantined.",
        highlight=False,
    )


def _nodes(node: str | None, data_dir: Path, database_url: str | None) -> Iterator[NodeSettings]:
    if node is not None:
        yield node_settings(node, data_dir, database_url)
        return
    if database_url is not None:
        raise SettingsError("--database-url names one store; give --node with it")
    found = [n for n in NODE_IDS if (data_dir / f"{n}.db").exists()]
    if not found:
        raise SettingsError(
            f"no node store in {data_dir}; give --node (and --database-url for PostgreSQL)"
        )
    for name in found:
        yield node_settings(name, data_dir, None)


def _field(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, dict) else getattr(row, name)


def list_quarantined(
    console: Console,
    node: str | None,
    data_dir: Path,
    database_url: str | None,
    *,
    limit: int,
    format_name: str | None,
) -> int:
    """Print a table of quarantined records; how many were shown."""
    from datatrust.ingest import list_quarantine

    table = Table(title=f"quarantined records in {data_dir}")
    for column in ("node", "id", "format", "location", "reason"):
        table.add_column(column, overflow="fold")
    shown = 0
    for settings in _nodes(node, data_dir, database_url):
        engine = _store(settings)
        try:
            rows = list_quarantine(engine, limit=limit, format=format_name)
        finally:
            engine.dispose()
        for row in rows:
            shown += 1
            table.add_row(
                settings.node_id,
                str(_field(row, "id")),
                str(_field(row, "format")),
                str(_field(row, "location")),
                str(_field(row, "reason")),
            )
    if shown:
        console.print(table)
    else:
        console.print("Nothing is quarantined.")
    return shown


def replay_quarantined(
    console: Console,
    node: str | None,
    data_dir: Path,
    database_url: str | None,
    ids: list[int],
) -> None:
    """Retry quarantined records (all, or ``ids``) through their format's reader."""
    from datatrust._prepare import node_pseudonymiser
    from datatrust.ingest import replay_quarantine

    for settings in _nodes(node, data_dir, database_url):
        engine = _store(settings)
        try:
            report = replay_quarantine(
                engine,
                node_pseudonymiser(settings.data_dir, settings.node_id),
                ids=ids or None,
            )
        finally:
            engine.dispose()
        console.print(f"{settings.node_id}: {_describe(report)}", highlight=False)


def _describe(report: Any) -> str:
    still = report.still_quarantined
    lines = [f"{len(report.replayed)} replayed and loaded, {len(still)} still quarantined"]
    lines += [f"  #{record_id}: {why}" for record_id, why in still]
    return "\n".join(lines)
