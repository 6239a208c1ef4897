import pytest
from sqlalchemy import update

from datatrust.store import AuditEvent, create_store_engine, migrate
from datatrust.trust import AuditEntry, append_audit_entry, verify_audit_chain


def entry(outcome: str = "permit", purpose: str = "service-planning") -> AuditEntry:
    return AuditEntry(
        node_id="health",
        requester="anonymous",
        purpose=purpose,
        operation="AreaCounts",
        fields=("Area.encounterCount",),
        outcome=outcome,
        code="OK" if outcome == "permit" else "ACCESS_DENIED",
        reason="permitted",
        policy_version="skeleton",
    )


def ledger(store_url):
    engine = create_store_engine(store_url)
    migrate(engine)
    return engine


def test_an_untouched_ledger_verifies_entry_by_entry(store_url):
    engine = ledger(store_url)
    for outcome in ("permit", "deny", "permit"):
        append_audit_entry(engine, entry(outcome))
    assert verify_audit_chain(engine) == (3, None)


def test_changing_one_entry_names_it_as_the_first_broken_one(store_url):
    engine = ledger(store_url)
    for _ in range(4):
        append_audit_entry(engine, entry())
    with engine.begin() as connection:
        connection.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(outcome="deny"))
    assert verify_audit_chain(engine) == (1, 2)


def test_removing_an_entry_breaks_the_chain_at_the_next_one(store_url):
    engine = ledger(store_url)
    for _ in range(3):
        append_audit_entry(engine, entry())
    with engine.begin() as connection:
        connection.execute(AuditEvent.__table__.delete().where(AuditEvent.seq == 2))
    assert verify_audit_chain(engine) == (1, 3)


def detailed(subjects: tuple[str, ...] = ("p-" + "a" * 32,)) -> AuditEntry:
    return AuditEntry(
        node_id="health",
        requester="university/rae via research-cli",
        purpose="research",
        operation="Cohort",
        fields=("Person.birthYear", "Person.pseudonym"),
        outcome="permit",
        code="OK",
        reason="agreement dsa-research-cohort permits",
        policy_version="v1",
        agency="university",
        roles=("researcher",),
        client_id="research-cli",
        subject="rae",
        aggregate=False,
        agreement="dsa-research-cohort",
        reasons=("agreement dsa-research-cohort permits",),
        row_count=len(subjects),
        subject_count=len(subjects),
        subjects=subjects,
        request_id="req-1",
        opt_out_list_date="2026-10-31",
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("subjects", '["p-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]'),
        ("agreement", "dsa-direct-care"),
        ("row_count", 0),
        ("roles", '["dpo"]'),
        ("opt_out_list_date", None),
    ],
)
def test_editing_any_detail_of_a_decision_breaks_the_chain(store_url, column, value):
    engine = ledger(store_url)
    for _ in range(3):
        append_audit_entry(engine, detailed())
    with engine.begin() as connection:
        connection.execute(update(AuditEvent).where(AuditEvent.seq == 2).values({column: value}))
    assert verify_audit_chain(engine) == (1, 2)


def test_entries_written_before_the_ledger_was_widened_still_verify(store_url):
    """Version-1 entries hash only the first nine fields; version-2 entries all of them."""
    engine = ledger(store_url)
    append_audit_entry(engine, entry())
    with engine.begin() as connection:  # as migration 0007 leaves an older entry
        connection.execute(update(AuditEvent).values(entry_version=1))
    # Re-hash the first entry as version 1, as it was written before the migration.
    from datatrust.trust._audit import GENESIS_HASH, _entry_hash

    with engine.begin() as connection:
        row = connection.execute(AuditEvent.__table__.select()).first()
        rehashed = _entry_hash(GENESIS_HASH, row.recorded_at, entry(), 1)
        connection.execute(update(AuditEvent).values(entry_hash=rehashed))
    append_audit_entry(engine, detailed())
    assert verify_audit_chain(engine) == (2, None)


def test_reading_a_subjects_entries_matches_the_whole_pseudonym_only(store_url):
    from datatrust.trust import read_audit_entries

    engine = ledger(store_url)
    mine, other = "p-" + "c" * 32, "p-" + "c" * 31 + "d"
    append_audit_entry(engine, detailed((mine,)))
    append_audit_entry(engine, detailed((other,)))
    append_audit_entry(engine, entry())
    found = read_audit_entries(engine, subject=mine)
    assert [e.subjects for _, _, e in found] == [(mine,)]


def test_without_a_head_anchor_a_deleted_tail_goes_unseen_and_with_one_it_is_found(
    store_url, tmp_path
):
    from datatrust.trust import read_audit_head

    engine = ledger(store_url)
    head = tmp_path / "audit" / "health.head.json"
    for _ in range(4):
        append_audit_entry(engine, detailed(), head)
    assert read_audit_head(head)[0] == max_seq(engine)
    with engine.begin() as connection:
        connection.execute(AuditEvent.__table__.delete().where(AuditEvent.seq == max_seq(engine)))
    assert verify_audit_chain(engine) == (3, None)  # the chain alone cannot tell
    assert verify_audit_chain(engine, head) == (3, read_audit_head(head)[0])


def test_an_unreadable_head_anchor_is_a_clear_store_error(store_url, tmp_path):
    from datatrust.errors import StoreError

    engine = ledger(store_url)
    head = tmp_path / "head.json"
    head.write_text("{not json")
    with pytest.raises(StoreError, match=r"head anchor .* is unreadable"):
        verify_audit_chain(engine, head)


def max_seq(engine) -> int:
    from sqlalchemy import func, select

    with engine.connect() as connection:
        return connection.execute(select(func.max(AuditEvent.seq))).scalar_one()
