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
