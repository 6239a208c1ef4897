"""The fast loading path: readings COPied straight in when new, staged when some are stored
already; either way the same rows and roll-ups."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from datatrust.ingest import Pseudonymiser, _pipeline, ingest_file, source_format
from datatrust.store import create_store_engine, migrate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def pseudonymiser(tmp_path):
    return Pseudonymiser(trust_key=b"k" * 32, wifi_key_dir=tmp_path / "keys" / "council")


def _uplink_lines(count: int) -> list[str]:
    start = datetime(2026, 10, 1, 6, tzinfo=UTC)
    lines = []
    for n in range(count):
        when = (start + timedelta(minutes=5 * n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        lines.append(
            json.dumps(
                {
                    "end_device_ids": {"device_id": "aq-014a-01"},
                    "received_at": when,
                    "uplink_message": {
                        "f_cnt": n,
                        "decoded_payload": {"pm2_5": 10 + n % 7, "pm10": 20 + n % 5},
                        "received_at": when,
                        "version_ids": {"model_id": "am308"},
                    },
                }
            )
        )
    return lines


def _load(engine, pseudonymiser, path: Path) -> None:
    with engine.begin() as connection:  # forget earlier batches: the file really loads
        connection.execute(text("DELETE FROM ingest_batch"))
    report = ingest_file(
        engine, path, source_format("things-stack-uplinks", node_id="council"), pseudonymiser
    )
    assert report.records_quarantined == 0


def _state(engine) -> tuple[list[tuple], list[tuple]]:
    with engine.connect() as connection:
        readings = connection.execute(
            text(
                "SELECT device_id, received_at, quantity, value, frame_counter FROM reading "
                "ORDER BY device_id, received_at, quantity"
            )
        ).all()
        hourly = connection.execute(
            text(
                "SELECT device_id, lsoa_code, quantity, hour, count, total, minimum, maximum "
                "FROM reading_hourly ORDER BY device_id, quantity, hour"
            )
        ).all()
    return [tuple(map(str, r)) for r in readings], [tuple(map(str, r)) for r in hourly]


def _fresh(store_url, pseudonymiser):
    engine = create_store_engine(store_url)
    migrate(engine)
    with engine.begin() as connection:
        for table in ("reading", "reading_hourly", "sensor", "ingest_batch"):
            connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608
    ingest_file(
        engine,
        FIXTURES / "sensor_inventory.csv",
        source_format("sensor-inventory", node_id="council"),
        pseudonymiser,
    )
    return engine


def test_a_file_overlapping_stored_readings_ends_as_one_clean_load_of_it(
    store_url, pseudonymiser, tmp_path, monkeypatch
):
    """Chunks wholly stored, partly stored, then new again (staged, then COPied in)."""
    lines = _uplink_lines(500)
    monkeypatch.setattr(_pipeline, "CHUNK_RECORDS", 100)
    whole, first = tmp_path / "whole.ndjson", tmp_path / "first.ndjson"
    whole.write_text("\n".join(lines) + "\n")
    first.write_text("\n".join(lines[:150]) + "\n")

    clean = _fresh(store_url, pseudonymiser)
    _load(clean, pseudonymiser, whole)
    expected = _state(clean)
    clean.dispose()

    engine = _fresh(store_url, pseudonymiser)
    _load(engine, pseudonymiser, first)
    _load(engine, pseudonymiser, whole)
    _load(engine, pseudonymiser, whole)
    assert _state(engine) == expected
    readings, hourly = expected
    assert len(readings) == 1000
    assert sum(int(row[4]) for row in hourly) == 1000
    assert {row[1] for row in hourly} == {"E01009522"}
    engine.dispose()


def test_an_uplink_sent_twice_in_one_chunk_is_one_reading_counted_once(
    store_url, pseudonymiser, tmp_path
):
    line = _uplink_lines(1)[0]
    path = tmp_path / "twice.ndjson"
    path.write_text(f"{line}\n{line}\n")
    engine = _fresh(store_url, pseudonymiser)
    _load(engine, pseudonymiser, path)
    readings, hourly = _state(engine)
    assert [(r[2], r[3]) for r in readings] == [("pm10", "20.0"), ("pm2_5", "10.0")]
    assert [(h[2], h[4], h[5]) for h in hourly] == [("pm10", "1", "20.0"), ("pm2_5", "1", "10.0")]
    engine.dispose()
