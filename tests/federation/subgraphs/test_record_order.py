"""A person's encounters and care episodes come back in one order, ties on start included.

On PostgreSQL the order of episodes sharing a start day followed the plan, so the same
person's list differed between ``_entities`` batch sizes. Rows here tie on start and are
stored against the order of their source ids; the read must order them by that id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert

from datatrust.federation.subgraphs._records import care_episodes_of, encounters_of
from datatrust.policies import Permit
from datatrust.store import CareEpisode, Encounter, create_store_engine, migrate

PERMIT = Permit(purpose="test", fields=frozenset(), policy_version="test")
PERSON = "p-" + "a" * 32
OTHER = "p-" + "b" * 32
REFERENCES = ["ref-c", "ref-a", "ref-d", "ref-b"]  # stored in this order


@pytest.fixture
def store(store_url):
    engine = create_store_engine(store_url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_care_episodes_sharing_a_start_day_come_in_source_reference_order(store):
    rows = [
        {
            "event_reference": reference,
            "pseudonym": pseudonym,
            "la_person_token": f"t-{pseudonym[-1]}",
            "event_type": "Service",
            "service_type": reference.upper(),
            "started_on": date(2024, 5, 1),
        }
        for reference, pseudonym in [*((r, PERSON) for r in REFERENCES), ("ref-e", OTHER)]
    ]
    with store.begin() as connection:
        connection.execute(insert(CareEpisode), rows)
    for batch in ([PERSON], [OTHER, PERSON]):
        episodes = care_episodes_of(store, PERMIT, batch)[PERSON]
        assert [e.service_type for e in episodes] == ["REF-A", "REF-B", "REF-C", "REF-D"]


def test_encounters_sharing_a_start_come_in_source_id_order(store):
    started = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    rows = [
        {
            "encounter_id": reference,
            "pseudonym": PERSON,
            "class_code": reference.upper(),
            "status": "finished",
            "started_at": started,
        }
        for reference in REFERENCES
    ]
    with store.begin() as connection:
        connection.execute(insert(Encounter), rows)
    for batch in ([PERSON], [OTHER, PERSON]):
        encounters = encounters_of(store, PERMIT, batch, None, None)[PERSON]
        assert [e.class_code for e in encounters] == ["REF-A", "REF-B", "REF-C", "REF-D"]
