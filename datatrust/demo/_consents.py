"""The demo trust's consent records and national data opt-out list, synthetic and stable.

Research under the demo's research agreement needs consent, so a node with no consents
would answer every research query with nobody. Most demo people (about 70%) have given
research consent to the node that holds their records; a few (about 5%) are on the
national data opt-out list. The choice is a function of each person's pseudonym, so it is
the same at every node and on every run, and the demo citizen always consents (the portal
journey withdraws it).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from datatrust.store import CareEpisode, Person

__all__ = ["seed_demo_consents"]

DEMO_CONSENT_TIME = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
OPT_OUT_CHECKED_ON = date(2026, 10, 31)


def _people(engine: sa.Engine, node_id: str) -> list[str]:
    column = Person.pseudonym if node_id == "health" else CareEpisode.pseudonym
    query = sa.select(column).where(column.is_not(None)).distinct()
    with engine.connect() as connection:
        return sorted(row[0] for row in connection.execute(query))


def consents(pseudonym: str) -> bool:
    return int(pseudonym[2:4], 16) < 180


def opted_out(pseudonym: str) -> bool:
    return int(pseudonym[4:6], 16) < 13


def seed_demo_consents(engine: sa.Engine, node_id: str, demo_citizen: str | None) -> int:
    """Give the demo's research consents and load its opt-out list, once; return how many."""
    from datatrust.trust import ConsentGrant, current_consents, give_consents, load_opt_out_list

    people = _people(engine, node_id)
    if not people:
        return 0
    marker = demo_citizen or people[0]
    if current_consents(engine, marker):
        return 0  # seeded on an earlier run
    chosen = [p for p in people if consents(p) or p == demo_citizen]
    give_consents(
        engine,
        [
            ConsentGrant(
                pseudonym=pseudonym,
                controller=node_id,
                purpose="research",
                lawful_basis="6(1)(a)",
                source="demo: research recruitment form",
                actor="demo-seed",
            )
            for pseudonym in chosen
        ],
        now=DEMO_CONSENT_TIME,
    )
    load_opt_out_list(
        engine,
        [p for p in people if opted_out(p) and p != demo_citizen],
        checked_on=OPT_OUT_CHECKED_ON,
        source="demo: synthetic national data opt-out list",
    )
    return len(chosen)
