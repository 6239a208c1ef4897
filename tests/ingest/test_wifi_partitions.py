"""WiFi sessions keyed and (on PostgreSQL) partitioned by the month they started in.

A session's Start, Interim-Update and Stop records may straddle a month boundary and
arrive in different files, chunks or transactions; they must still fold into one row, in
the partition of the month the session started in, with ``wifi_daily`` counting it once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from datatrust.ingest import Pseudonymiser, _pipeline, ingest_file, source_format
from datatrust.ingest._rows import session_month
from datatrust.store import WifiDaily, WifiSession, create_store_engine, migrate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
AP = "11-22-33-44-55-66"


@pytest.fixture
def store(store_url):
    engine = create_store_engine(store_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pseudonymiser(tmp_path):
    return Pseudonymiser(trust_key=b"k" * 32, wifi_key_dir=tmp_path / "keys" / "council")


def _record(
    status: str,
    uid: str,
    when: datetime,
    *,
    seconds: int | None = None,
    event_timestamp: bool = True,
    mac: str = "AA-BB-CC-DD-EE-0A",
) -> str:
    """One rlm_detail record; without ``event_timestamp`` only FreeRADIUS's ``Timestamp``."""
    lines = [
        when.strftime("%a %b %e %H:%M:%S %Y"),
        f"\tAcct-Status-Type = {status}",
        '\tNAS-Identifier = "cov-ap-014a-01"',
        f'\tCalled-Station-Id = "{AP}:CoventryFreeWiFi"',
        f'\tCalling-Station-Id = "{mac}"',
        f'\tAcct-Session-Id = "{uid.upper()}"',
    ]
    if seconds is not None:
        lines += [f"\tAcct-Session-Time = {seconds}", f"\tAcct-Input-Octets = {seconds * 1000}"]
    if event_timestamp:
        lines.append(f"\tEvent-Timestamp = {int(when.timestamp())}")
    lines += [f'\tAcct-Unique-Session-Id = "{uid}"', f"\tTimestamp = {int(when.timestamp())}"]
    return "\n".join(lines) + "\n\n"


# One session from 30 September 23:50 to 1 October 00:20, and one in each month.
ACROSS = "a0a0a0a0a0a0a0a0"
START = datetime(2026, 9, 30, 23, 50, tzinfo=UTC)
RECORDS = [
    _record("Start", ACROSS, START),
    _record("Start", "b1b1b1b1b1b1b1b1", datetime(2026, 9, 12, 10, tzinfo=UTC), mac="AABBCCDDEE0B"),
    _record("Interim-Update", ACROSS, START + timedelta(minutes=15), seconds=900),
    _record(
        "Start", "c2c2c2c2c2c2c2c2", datetime(2026, 10, 3, 9, tzinfo=UTC), mac="aa:bb:cc:dd:ee:0c"
    ),
    _record("Stop", ACROSS, START + timedelta(minutes=30), seconds=1800),
]


def _write(tmp_path: Path, name: str, records: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("".join(records))
    return path


def _load(engine, pseudonymiser, *paths: Path) -> None:
    chosen = source_format("freeradius-detail", node_id="council")
    for path in paths:
        ingest_file(engine, path, chosen, pseudonymiser)


def _load_access_points(engine, pseudonymiser) -> None:
    chosen = source_format("access-point-inventory", node_id="council")
    ingest_file(engine, FIXTURES / "access_point_inventory.csv", chosen, pseudonymiser)


def _sessions(engine) -> list[tuple[object, ...]]:
    s = WifiSession
    query = select(
        s.unique_session_id,
        s.session_month,
        s.started_at,
        s.last_event_at,
        s.stopped_at,
        s.session_time_seconds,
        s.input_octets,
        s.is_open,
    ).order_by(s.unique_session_id)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def _daily(engine) -> list[tuple[object, ...]]:
    d = WifiDaily
    query = select(d.ap_mac, d.lsoa_code, d.day, d.sessions).where(d.sessions != 0)
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query.order_by(d.day))]


def _forget_batches(engine) -> None:
    """So the same files really load again (not skipped as already loaded)."""
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM ingest_batch"))


def test_every_record_of_a_session_gives_the_month_it_started_in() -> None:
    months = {
        session_month(START, None),
        session_month(START, 0),
        session_month(START + timedelta(minutes=15), 900),
        session_month(START + timedelta(minutes=30), 1800),
    }
    assert months == {date(2026, 9, 1)}
    assert session_month(datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC), 10) == date(2025, 12, 1)


def _at(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


SEPTEMBER, OCTOBER = date(2026, 9, 1), date(2026, 10, 1)
SEPT_12 = _at(12, 10, month=9)
EXPECTED_SESSIONS = [
    (ACROSS, SEPTEMBER, START, _at(1, 0, 20), _at(1, 0, 20), 1800, 1_800_000, False),
    ("b1b1b1b1b1b1b1b1", SEPTEMBER, SEPT_12, SEPT_12, None, None, None, True),
    ("c2c2c2c2c2c2c2c2", OCTOBER, _at(3, 9), _at(3, 9), None, None, None, True),
]
# A session counts once, on the day of its last event: the boundary session on 1 October.
AP_KEY = AP.replace("-", ":")  # as the adapter normalises a MAC
EXPECTED_DAILY = [
    (AP_KEY, "E01009522", date(2026, 9, 12), 1),
    (AP_KEY, "E01009522", date(2026, 10, 1), 1),
    (AP_KEY, "E01009522", date(2026, 10, 3), 1),
]


@pytest.mark.parametrize("chunk", [2000, 1])
def test_records_of_a_session_across_a_month_boundary_stay_one_row_and_one_count(
    store, pseudonymiser, tmp_path, monkeypatch, chunk
):
    monkeypatch.setattr(_pipeline, "CHUNK_RECORDS", chunk)
    _load_access_points(store, pseudonymiser)
    # Records of the boundary session in three files, each its own transaction(s).
    files = [_write(tmp_path, f"detail-{n}", RECORDS[n : n + 2]) for n in (0, 2, 4)]
    _load(store, pseudonymiser, *files)
    assert _sessions(store) == EXPECTED_SESSIONS
    assert _daily(store) == EXPECTED_DAILY


def test_loading_the_same_sessions_twice_duplicates_nothing(store, pseudonymiser, tmp_path):
    _load_access_points(store, pseudonymiser)
    whole = _write(tmp_path, "detail", RECORDS)
    _load(store, pseudonymiser, whole)
    first = (_sessions(store), _daily(store))
    _forget_batches(store)
    _load(store, pseudonymiser, whole)
    assert (_sessions(store), _daily(store)) == first == (EXPECTED_SESSIONS, EXPECTED_DAILY)


def test_a_record_whose_start_lands_a_second_across_the_boundary_joins_its_stored_session(
    store, pseudonymiser, tmp_path
):
    # The Start was at 23:59:59 on 30 September. The Interim-Update has no Event-Timestamp,
    # so its time is FreeRADIUS's Timestamp, written 3 s late after a NAS retry: its start
    # works out as 1 October 00:00:02. It still merges into the September row.
    uid = "d3d3d3d3d3d3d3d3"
    start = datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC)
    late = start + timedelta(seconds=600 + 3)
    _load(store, pseudonymiser, _write(tmp_path, "start", [_record("Start", uid, start)]))
    interim = _record("Interim-Update", uid, late, seconds=600, event_timestamp=False)
    _load(store, pseudonymiser, _write(tmp_path, "interim", [interim]))
    assert session_month(late, 600) == date(2026, 10, 1)
    assert [(row[0], row[1], row[5]) for row in _sessions(store)] == [(uid, SEPTEMBER, 600)]
    assert [(day, n) for _, _, day, n in _daily(store)] == [(OCTOBER, 1)]


@pytest.mark.postgres
def test_on_postgres_each_session_lands_in_the_partition_of_its_start_month(
    postgres_url, pseudonymiser, tmp_path
):
    store = create_store_engine(postgres_url)
    migrate(store)
    files = [_write(tmp_path, f"detail-{n}", RECORDS[n : n + 2]) for n in (0, 2, 4)]
    _load(store, pseudonymiser, *files)
    _forget_batches(store)
    _load(store, pseudonymiser, *files)
    with store.connect() as connection:
        placed = connection.execute(
            text("SELECT tableoid::regclass::text, unique_session_id FROM wifi_session ORDER BY 2")
        ).all()
        partitions = connection.execute(
            text(
                "SELECT inhrelid::regclass::text FROM pg_inherits "
                "WHERE inhparent = 'wifi_session'::regclass ORDER BY 1"
            )
        ).scalars()
        partitions = list(partitions)
    store.dispose()
    assert [tuple(row) for row in placed] == [
        ("wifi_session_y2026m09", ACROSS),
        ("wifi_session_y2026m09", "b1b1b1b1b1b1b1b1"),
        ("wifi_session_y2026m10", "c2c2c2c2c2c2c2c2"),
    ]
    assert partitions == [
        "wifi_session_default",
        "wifi_session_y2026m09",
        "wifi_session_y2026m10",
    ]


@pytest.mark.postgres
def test_on_postgres_sessions_migrated_into_the_default_partition_move_to_their_month(
    postgres_url, pseudonymiser, tmp_path
):
    store = create_store_engine(postgres_url)
    migrate(store)
    start = datetime(2026, 8, 20, 12, tzinfo=UTC)
    uid = "e4e4e4e4e4e4e4e4"
    with store.begin() as connection:  # as 0005 leaves a session stored before it
        connection.execute(
            text(
                "INSERT INTO wifi_session (unique_session_id, session_month, session_id, "
                "device_token, ap_mac, nas_identifier, started_at, last_event_at, is_open) "
                "VALUES (:uid, '2026-08-01', 'S', 'tok', :ap, 'ap', :at, :at, true)"
            ),
            {"uid": uid, "ap": AP, "at": start},
        )
    stop = _record("Stop", uid, start + timedelta(hours=1), seconds=3600)
    _load(store, pseudonymiser, _write(tmp_path, "stop", [stop]))
    with store.connect() as connection:
        placed = connection.execute(
            text("SELECT tableoid::regclass::text, is_open, stopped_at FROM wifi_session")
        ).all()
    store.dispose()
    assert [tuple(row) for row in placed] == [
        ("wifi_session_y2026m08", False, datetime(2026, 8, 20, 13, tzinfo=UTC))
    ]
