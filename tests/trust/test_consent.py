"""Consent records, the national data opt-out list and the SQL row filters, on both databases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from datatrust.errors import ConsentError, ConsentStateConflict, PurposeUnknown
from datatrust.store import (
    CareEpisode,
    Consent,
    ConsentEvent,
    Encounter,
    NationalOptOut,
    create_store_engine,
    migrate,
)
from datatrust.trust import (
    CONSENT_SCHEMA_VERSION,
    ConsentGrant,
    ConsentState,
    consent_history,
    current_consents,
    give_consent,
    give_consents,
    has_current_consent,
    load_opt_out_list,
    not_opted_out,
    opt_out_list_date,
    withdraw_consent,
)

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
P1, P2, P3, P4, P5 = (f"p-{n:032x}" for n in range(1, 6))


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    engine = create_store_engine(store_url)
    migrate(engine)
    yield engine
    engine.dispose()


def give(engine: sa.Engine, pseudonym: str, purpose: str = "research", **kwargs):
    arguments = {
        "controller": "health",
        "lawful_basis": "6(1)(a)+9(2)(a)",
        "source": "research-recruitment-form",
        "actor": "citizen",
        "now": NOW,
    } | kwargs
    return give_consent(engine, pseudonym=pseudonym, purpose=purpose, **arguments)


def seed_encounters(engine: sa.Engine, *pseudonyms: str) -> None:
    table = Encounter.__table__
    with engine.begin() as connection:
        connection.execute(
            table.insert(),
            [
                {
                    "encounter_id": f"enc-{n}",
                    "pseudonym": pseudonym,
                    "class_code": "AMB",
                    "status": "finished",
                    "started_at": NOW - timedelta(days=n),
                    "lsoa_code": "E01009522",
                }
                for n, pseudonym in enumerate(pseudonyms, start=1)
            ],
        )


def research_rows(engine: sa.Engine, *conditions) -> list[str]:
    """The pseudonyms a research query over encounters returns, filtered in SQL."""
    table = Encounter.__table__
    query = sa.select(table.c.pseudonym).where(*conditions).order_by(table.c.pseudonym)
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


# --- giving and withdrawing ------------------------------------------------------------


def test_giving_consent_stores_a_27560_record_and_its_first_event(engine) -> None:
    record = give(engine, P1, expires_at=NOW + timedelta(days=365), notice_version="v3")
    assert record.record_id.startswith("urn:uuid:")
    assert (record.pseudonym, record.controller, record.purpose) == (P1, "health", "research")
    assert record.schema_version == CONSENT_SCHEMA_VERSION
    assert record.lawful_basis == "6(1)(a)+9(2)(a)"
    assert record.state is ConsentState.GIVEN
    assert record.is_current
    assert record.given_at == record.updated_at == NOW
    assert record.expires_at == NOW + timedelta(days=365)
    assert record.notice_version == "v3"
    [event] = consent_history(engine, P1, now=NOW)
    assert (event.record_id, event.state, event.actor, event.at, event.source) == (
        record.record_id,
        ConsentState.GIVEN,
        "citizen",
        NOW,
        "research-recruitment-form",
    )


def test_the_subject_withdraws_and_anyone_else_revokes(engine) -> None:
    give(engine, P1)
    give(engine, P1, purpose="service-planning")
    later = NOW + timedelta(hours=1)
    withdrawn = withdraw_consent(
        engine, pseudonym=P1, controller="health", purpose="research", actor="citizen", now=later
    )
    revoked = withdraw_consent(
        engine,
        pseudonym=P1,
        controller="health",
        purpose="service-planning",
        actor="dpo:alice",
        by_subject=False,
        now=later,
        note="court order",
    )
    assert withdrawn.state is ConsentState.WITHDRAWN
    assert not withdrawn.is_current
    assert revoked.state is ConsentState.REVOKED
    assert withdrawn.given_at == NOW
    assert withdrawn.updated_at == later
    assert [(e.purpose, e.state, e.actor, e.note) for e in consent_history(engine, P1)] == [
        ("research", ConsentState.GIVEN, "citizen", None),
        ("service-planning", ConsentState.GIVEN, "citizen", None),
        ("research", ConsentState.WITHDRAWN, "citizen", None),
        ("service-planning", ConsentState.REVOKED, "dpo:alice", "court order"),
    ]
    assert current_consents(engine, P1, now=later) == []


def test_withdrawing_a_consent_never_given_is_a_state_conflict(engine) -> None:
    with pytest.raises(ConsentStateConflict) as conflict:
        withdraw_consent(
            engine, pseudonym=P1, controller="health", purpose="research", actor="citizen"
        )
    assert conflict.value.message == (
        f"cannot withdraw the consent of {P1!r} to controller 'health' for purpose "
        "'research': no consent was ever given, so there is nothing to withdraw"
    )
    assert conflict.value.status_hint == 409
    assert conflict.value.code == "CONSENT_STATE_CONFLICT"


def test_withdrawing_twice_says_it_is_already_withdrawn_and_records_nothing(engine) -> None:
    give(engine, P1)
    withdraw_consent(engine, pseudonym=P1, controller="health", purpose="research", actor="me")
    with pytest.raises(ConsentStateConflict, match="consent is already withdrawn"):
        withdraw_consent(engine, pseudonym=P1, controller="health", purpose="research", actor="me")
    with engine.connect() as connection:
        events = connection.execute(sa.select(sa.func.count()).select_from(ConsentEvent)).scalar()
    assert events == 2


def test_consent_for_a_purpose_the_register_does_not_know_is_refused(engine) -> None:
    with pytest.raises(PurposeUnknown, match=r"^unknown purpose 'marketing'"):
        give(engine, P1, purpose="marketing")
    with pytest.raises(PurposeUnknown, match=r"^unknown purpose 'marketing'"):
        withdraw_consent(engine, pseudonym=P1, controller="health", purpose="marketing", actor="me")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lawful_basis": "consent"}, r"^lawful basis 'consent' is not a UK GDPR Art\. 6 basis"),
        ({"expires_at": NOW}, r"^expires_at 2026-11-20T09:00:00\+00:00 is not after the time"),
        ({"now": datetime(2026, 11, 20, 9, 0)}, r"^now .* must be a datetime with a time zone"),
        ({"controller": " "}, r"^controller must be a non-empty string, not ' '$"),
        ({"actor": ""}, r"^actor must be a non-empty string"),
    ],
)
def test_a_bad_consent_is_refused_with_the_field_named(engine, change, message) -> None:
    with pytest.raises(ConsentError, match=message):
        give(engine, P1, **change)
    assert current_consents(engine, P1, now=NOW) == []


def test_giving_again_renews_one_record(engine) -> None:
    first = give(engine, P1, expires_at=NOW + timedelta(days=30))
    renewed = give(engine, P1, now=NOW + timedelta(days=20), expires_at=NOW + timedelta(days=60))
    assert renewed.record_id == first.record_id
    assert renewed.given_at == NOW + timedelta(days=20)
    assert [(e.state, e.note) for e in consent_history(engine, P1, now=NOW)] == [
        (ConsentState.GIVEN, None),
        (ConsentState.GIVEN, "renewed"),
    ]


def test_expiry_is_applied_at_query_time_and_shows_in_the_history(engine) -> None:
    expiry = NOW + timedelta(hours=1)
    give(engine, P1, expires_at=expiry)
    assert [c.purpose for c in current_consents(engine, P1, now=expiry - timedelta(seconds=1))] == [
        "research"
    ]
    assert current_consents(engine, P1, now=expiry) == []
    assert [(e.state, e.at) for e in consent_history(engine, P1, now=expiry)] == [
        (ConsentState.GIVEN, NOW),
        (ConsentState.EXPIRED, expiry),
    ]
    with pytest.raises(ConsentStateConflict, match="consent has already expired"):
        withdraw_consent(
            engine,
            pseudonym=P1,
            controller="health",
            purpose="research",
            actor="me",
            now=expiry,
        )
    # Giving again after the expiry keeps the expiry in the history as an event of its own.
    again = NOW + timedelta(days=2)
    give(engine, P1, now=again)
    assert [(e.state, e.at) for e in consent_history(engine, P1, now=again)] == [
        (ConsentState.GIVEN, NOW),
        (ConsentState.EXPIRED, expiry),
        (ConsentState.GIVEN, again),
    ]


def test_people_giving_the_same_consent_at_once_get_one_record(engine) -> None:
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            give(engine, P1)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with engine.connect() as connection:
        records = connection.execute(sa.select(sa.func.count()).select_from(Consent)).scalar()
        events = connection.execute(sa.select(sa.func.count()).select_from(ConsentEvent)).scalar()
    assert (records, events) == (1, 6)


def test_a_bulk_load_of_consents_is_all_or_nothing(engine) -> None:
    def grant(pseudonym: str, purpose: str = "research") -> ConsentGrant:
        return ConsentGrant(
            pseudonym=pseudonym,
            controller="health",
            purpose=purpose,
            lawful_basis="6(1)(a)",
            source="recruitment",
            actor="loader",
        )

    with pytest.raises(PurposeUnknown):
        give_consents(engine, [grant(P1), grant(P2, purpose="marketing")], now=NOW)
    assert current_consents(engine, P1, now=NOW) == []
    records = give_consents(engine, [grant(P1), grant(P2), grant(P1)], now=NOW)
    assert [(r.pseudonym, r.state) for r in records] == [
        (P1, ConsentState.GIVEN),
        (P2, ConsentState.GIVEN),
        (P1, ConsentState.GIVEN),
    ]
    assert records[0].record_id == records[2].record_id
    assert [e.note for e in consent_history(engine, P1, now=NOW)] == [None, "renewed"]


def test_a_grant_checks_itself_when_built() -> None:
    with pytest.raises(ConsentError, match=r"^pseudonym must be a non-empty string"):
        ConsentGrant(
            pseudonym="",
            controller="health",
            purpose="research",
            lawful_basis="6(1)(a)",
            source="s",
            actor="a",
        )


# --- the row filters, in SQL -------------------------------------------------------------


def test_the_consent_filter_keeps_only_current_consents_for_the_purpose(engine) -> None:
    seed_encounters(engine, P1, P2, P3, P4, P5)
    give(engine, P1)  # current, research
    give(engine, P2, purpose="service-planning")  # another purpose
    give(engine, P3, expires_at=NOW + timedelta(minutes=5))  # expires before the query
    give(engine, P4)
    withdraw_consent(engine, pseudonym=P4, controller="health", purpose="research", actor="me")
    give(engine, P5, controller="council")  # given to another controller
    column = Encounter.__table__.c.pseudonym
    query_time = NOW + timedelta(minutes=5)
    assert research_rows(
        engine, has_current_consent(column, purpose="research", now=query_time)
    ) == [P1, P5]
    assert research_rows(
        engine,
        has_current_consent(column, purpose="research", now=query_time, controller="health"),
    ) == [P1]
    assert research_rows(
        engine, has_current_consent(column, purpose="research", now=NOW + timedelta(minutes=4))
    ) == [P1, P3, P5]


def test_a_withdrawal_changes_the_very_next_query(engine) -> None:
    seed_encounters(engine, P1, P2)
    give(engine, P1)
    give(engine, P2)
    column = Encounter.__table__.c.pseudonym
    current = has_current_consent(column, purpose="research", now=NOW + timedelta(seconds=1))
    assert research_rows(engine, current) == [P1, P2]
    withdraw_consent(engine, pseudonym=P2, controller="health", purpose="research", actor="me")
    assert research_rows(engine, current) == [P1]


def test_the_opt_out_filter_follows_each_full_list(engine) -> None:
    seed_encounters(engine, P1, P2, P3)
    column = Encounter.__table__.c.pseudonym
    assert research_rows(engine, not_opted_out(column)) == [P1, P2, P3]
    load_opt_out_list(engine, [P2], checked_on=date(2026, 11, 1), source="mesh", now=NOW)
    assert research_rows(engine, not_opted_out(column)) == [P1, P3]
    # The next list is the full list: P2 has left it, P3 has joined.
    load_opt_out_list(engine, [P3], checked_on=date(2026, 11, 8), source="mesh", now=NOW)
    assert research_rows(engine, not_opted_out(column)) == [P1, P2]


def test_both_filters_combine_in_one_aggregate_query(engine) -> None:
    seed_encounters(engine, P1, P2, P3)
    for pseudonym in (P1, P2, P3):
        give(engine, pseudonym)
    load_opt_out_list(engine, [P3], checked_on=date(2026, 11, 1), source="mesh", now=NOW)
    table = Encounter.__table__
    query = (
        sa.select(table.c.lsoa_code, sa.func.count())
        .where(
            has_current_consent(table.c.pseudonym, purpose="research", now=NOW),
            not_opted_out(table.c.pseudonym),
        )
        .group_by(table.c.lsoa_code)
    )
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    assert "WHERE encounter.pseudonym IS NOT NULL AND encounter.pseudonym IN (SELECT" in sql
    assert "encounter.pseudonym NOT IN (SELECT national_opt_out.pseudonym" in sql
    assert "FROM consent" in sql
    assert "FROM national_opt_out" in sql
    with engine.connect() as connection:
        assert connection.execute(query).all() == [("E01009522", 2)]
    withdraw_consent(engine, pseudonym=P1, controller="health", purpose="research", actor="me")
    with engine.connect() as connection:
        assert connection.execute(query).all() == [("E01009522", 1)]


def test_a_row_without_a_pseudonym_passes_neither_filter(engine) -> None:
    table = CareEpisode.__table__
    with engine.begin() as connection:
        connection.execute(
            table.insert(),
            [
                {
                    "event_reference": reference,
                    "pseudonym": pseudonym,
                    "la_person_token": f"l-{reference}",
                    "event_type": "Assessment",
                    "started_on": date(2026, 10, 1),
                }
                for reference, pseudonym in (("known", P1), ("unknown", None))
            ],
        )
    give(engine, P1)
    for condition in (
        not_opted_out(table.c.pseudonym),
        has_current_consent(table.c.pseudonym, purpose="research", now=NOW),
    ):
        query = sa.select(table.c.event_reference).where(condition)
        with engine.connect() as connection:
            assert list(connection.execute(query).scalars()) == ["known"]


def test_the_consent_filter_refuses_a_naive_time() -> None:
    with pytest.raises(ConsentError, match="must be a datetime with a time zone"):
        has_current_consent(
            Encounter.__table__.c.pseudonym, purpose="research", now=datetime(2026, 1, 1)
        )


# --- loading the opt-out list ------------------------------------------------------------


def test_a_load_replaces_the_list_and_is_recorded(engine) -> None:
    assert opt_out_list_date(engine) is None
    first = load_opt_out_list(
        engine, [P1, P2, P2], checked_on=date(2026, 11, 1), source="mesh:first", now=NOW
    )
    assert (first.count, first.added, first.removed) == (2, 2, 0)
    later = NOW + timedelta(days=7)
    second = load_opt_out_list(
        engine, iter([P2, P3]), checked_on=date(2026, 11, 8), source="mesh:second", now=later
    )
    assert (second.count, second.added, second.removed) == (2, 1, 1)
    assert second.load_id > first.load_id
    assert opt_out_list_date(engine) == date(2026, 11, 8)
    with engine.connect() as connection:
        listed = dict(connection.execute(sa.select(NationalOptOut.__table__)).all())
    # P2 was on both lists: it keeps the time it was first registered.
    assert listed == {P2: NOW, P3: later}


def test_a_list_older_than_the_current_one_is_refused_and_changes_nothing(engine) -> None:
    load_opt_out_list(engine, [P1], checked_on=date(2026, 11, 8), source="mesh", now=NOW)
    with pytest.raises(
        ConsentError,
        match=r"^checked_on 2026-11-01 is older than the list already loaded \(checked on "
        r"2026-11-08\); loading it would undo newer opt-outs$",
    ):
        load_opt_out_list(engine, [P2], checked_on=date(2026, 11, 1), source="mesh", now=NOW)
    assert opt_out_list_date(engine) == date(2026, 11, 8)
    column = NationalOptOut.__table__.c.pseudonym
    with engine.connect() as connection:
        assert list(connection.execute(sa.select(column)).scalars()) == [P1]


@pytest.mark.parametrize(
    ("pseudonyms", "checked_on", "message"),
    [
        ([P1, ""], date(2026, 11, 1), r"^opt-out list entry 2 is '', not a pseudonym"),
        ([P1, None], date(2026, 11, 1), r"^opt-out list entry 2 is None"),
        ([P1], date(2026, 11, 21), r"^checked_on 2026-11-21 is in the future"),
        ([P1], NOW, r"^checked_on .* must be a date"),
    ],
)
def test_a_bad_load_loads_nothing(engine, pseudonyms, checked_on, message) -> None:
    load_opt_out_list(engine, [P3], checked_on=date(2026, 10, 1), source="mesh", now=NOW)
    with pytest.raises(ConsentError, match=message):
        load_opt_out_list(engine, pseudonyms, checked_on=checked_on, source="mesh", now=NOW)
    column = NationalOptOut.__table__.c.pseudonym
    with engine.connect() as connection:
        assert list(connection.execute(sa.select(column)).scalars()) == [P3]
    assert opt_out_list_date(engine) == date(2026, 10, 1)


def test_a_large_list_loads_in_chunks(engine) -> None:
    pseudonyms = [f"p-{n:032x}" for n in range(2_345)]
    load = load_opt_out_list(
        engine, pseudonyms, checked_on=date(2026, 11, 1), source="mesh", now=NOW
    )
    assert load.count == load.added == 2_345
    smaller = load_opt_out_list(
        engine, pseudonyms[1_000:], checked_on=date(2026, 11, 2), source="mesh", now=NOW
    )
    assert (smaller.count, smaller.added, smaller.removed) == (1_345, 0, 1_000)
