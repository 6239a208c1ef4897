"""The store's tables hold what the models say, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlmodel import select

from datatrust.store import (
    AuditEvent,
    CareEpisode,
    Reading,
    WifiSession,
    create_store_engine,
    migrate,
    session_scope,
)


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    engine = create_store_engine(store_url)
    migrate(engine)
    yield engine
    engine.dispose()


def _reading(**overrides: object) -> Reading:
    fields: dict[str, object] = {
        "device_id": "eui-70b3d57ed0001a2b",
        "received_at": datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
        "quantity": "pm2_5",
        "value": 7.4,
        "unit": "ug/m3",
    }
    return Reading(**(fields | overrides))


def test_the_same_reading_cannot_be_stored_twice(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        session.add(_reading())
    with pytest.raises(sa.exc.IntegrityError), session_scope(engine) as session:
        session.add(_reading(value=8.0))
    with session_scope(engine) as session:
        assert [r.value for r in session.exec(select(Reading))] == [7.4]


def test_a_reading_of_another_quantity_at_the_same_time_is_stored(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        session.add(_reading())
        session.add(_reading(quantity="no2", value=21.0))
    with session_scope(engine) as session:
        assert sorted(r.quantity for r in session.exec(select(Reading))) == ["no2", "pm2_5"]


def test_datetimes_come_back_aware_utc_whatever_zone_went_in(engine: sa.Engine) -> None:
    bst = timezone(timedelta(hours=1), "BST")
    with session_scope(engine) as session:
        session.add(
            _reading(
                received_at=datetime(2025, 6, 1, 10, 0, 0, 250000, tzinfo=bst),
                device_time=datetime(2025, 6, 1, 8, 59, 59, tzinfo=UTC),
            )
        )
    with session_scope(engine) as session:
        reading = session.exec(select(Reading)).one()
    assert reading.received_at == datetime(2025, 6, 1, 9, 0, 0, 250000, tzinfo=UTC)
    assert reading.received_at.tzinfo == UTC
    assert reading.device_time == datetime(2025, 6, 1, 8, 59, 59, tzinfo=UTC)
    assert reading.device_time.tzinfo == UTC


def test_datetimes_compare_in_sql_by_instant(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        session.add(_reading(received_at=datetime(2025, 6, 1, 9, 0, tzinfo=UTC)))
    since = datetime(2025, 6, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    with session_scope(engine) as session:
        found = session.exec(select(Reading).where(Reading.received_at >= since)).all()
    assert len(found) == 1


def test_a_naive_datetime_is_refused(engine: sa.Engine) -> None:
    with (
        pytest.raises(sa.exc.StatementError, match=r"naive datetime 2025-03-01T09:30:00"),
        session_scope(engine) as session,
    ):
        session.add(_reading(received_at=datetime(2025, 3, 1, 9, 30)))


def test_octet_counters_beyond_32_bits_and_dates_round_trip(engine: sa.Engine) -> None:
    with session_scope(engine) as session:
        session.add(
            WifiSession(
                unique_session_id="a1b2c3d4e5f60718",
                session_month=date(2025, 3, 1),
                session_id="5F3A0001",
                device_token="tok_3f9a",
                ap_mac="00-11-22-33-44-55",
                nas_identifier="coventry-library-ap1",
                last_event_at=datetime(2025, 3, 1, 10, tzinfo=UTC),
                input_octets=6_000_000_000,
                output_octets=2**40,
                is_open=True,
            )
        )
        session.add(
            CareEpisode(
                event_reference="CLD-2025-000123",
                la_person_token="la_7c1e",
                event_type="Assessment",
                started_on=date(2025, 1, 6),
            )
        )
    with session_scope(engine) as session:
        wifi = session.exec(select(WifiSession)).one()
        care = session.exec(select(CareEpisode)).one()
    assert (wifi.input_octets, wifi.output_octets, wifi.is_open) == (6_000_000_000, 2**40, True)
    assert (care.started_on, care.ended_on, care.pseudonym) == (date(2025, 1, 6), None, None)


def test_audit_sequence_numbers_are_assigned_in_order(engine: sa.Engine) -> None:
    def event(n: int) -> AuditEvent:
        return AuditEvent(
            recorded_at=datetime(2025, 3, 1, 12, n, tzinfo=UTC),
            node_id="council",
            requester="analyst@coventry",
            purpose="service-planning",
            operation="query",
            fields='["Area.footfall"]',
            outcome="allow",
            code="OK",
            reason="",
            policy_version="2025.03.1",
            prev_hash="0" * 64 if n == 0 else f"{n - 1:064x}",
            entry_hash=f"{n:064x}",
        )

    with session_scope(engine) as session:
        for n in range(3):
            session.add(event(n))
            session.flush()
    with session_scope(engine) as session:
        seqs = [e.seq for e in session.exec(select(AuditEvent).order_by(AuditEvent.seq))]
    assert seqs == [1, 2, 3]
