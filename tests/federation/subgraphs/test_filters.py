"""Row filters as SQL: the asked period and the agreement's dates become one range."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from datatrust.errors import AccessDenied
from datatrust.federation.subgraphs._filters import restrict
from datatrust.policies import Obligations, Permit

metadata = sa.MetaData()
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("day", sa.Date),
)


@pytest.fixture(scope="module")
def engine():
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            events.insert(),
            [
                {"id": d, "at": datetime(2026, 10, d, 12, tzinfo=UTC), "day": date(2026, 10, d)}
                for d in range(1, 32)
            ]
            + [{"id": 99, "at": None, "day": None}],
        )
    return engine


def permit(*filters) -> Permit:
    return Permit(
        purpose="research",
        fields=frozenset(),
        policy_version="v1",
        obligations=Obligations(row_filters=tuple(filters)),
    )


AGREED = {"kind": "agreement_period", "from": "2026-10-10", "until": "2026-10-20"}


def days(engine, query) -> list[int]:
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(query.order_by(events.c.id))]


@pytest.mark.parametrize("column", ["at", "day"])
@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (None, None, list(range(10, 21))),
        (date(2026, 10, 1), date(2026, 10, 31), list(range(10, 21))),
        (date(2026, 10, 15), None, list(range(15, 21))),
        (None, date(2026, 10, 12), [10, 11, 12]),
        (date(2026, 10, 25), date(2026, 10, 31), []),
    ],
)
def test_only_records_inside_both_the_asked_period_and_the_agreement_are_read(
    engine, column, since, until, expected
):
    query = restrict(
        sa.select(events.c.id),
        permit(AGREED),
        subject=None,
        when=events.c[column],
        when_is_date=column == "day",
        since=since,
        until=until,
    )
    assert days(engine, query) == expected


def test_without_an_agreement_period_the_asked_period_alone_applies(engine):
    query = restrict(
        sa.select(events.c.id),
        permit(),
        subject=None,
        when=events.c.at,
        since=date(2026, 10, 30),
        until=None,
    )
    assert days(engine, query) == [30, 31]


def test_a_filter_the_node_cannot_apply_refuses_the_read(engine):
    with pytest.raises(AccessDenied, match="cannot apply \\('geofence'\\)"):
        restrict(sa.select(events.c.id), permit({"kind": "geofence"}), subject=None, when=None)
