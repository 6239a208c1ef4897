"""What the "Your choices" page shows, from what the nodes answered: pure, no I/O.

For each agency, one row per purpose a citizen may choose for (the portal's
``consent_purposes``, plus any other purpose their history there names): whether their
consent counts now, the one action open to them (give or withdraw), and the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["STATE_WORDS", "AgencyChoices", "Choice", "HistoryLine", "agency_choices"]

STATE_WORDS = {
    "ConsentGiven": "You gave consent",
    "ConsentWithdrawn": "You withdrew consent",
    "ConsentRevoked": "Consent ended by the organisation",
    "ConsentRefused": "You refused consent",
    "ConsentExpired": "Consent reached its end date",
    "ConsentInvalidated": "Consent was found not to be valid",
}
"""Each DPV state in plain English, as the history says it."""


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    purpose_title: str
    what: str
    note: str | None


@dataclass(frozen=True)
class Choice:
    purpose: str
    purpose_title: str
    is_given: bool
    status: str
    action: str  # "give" or "withdraw"


@dataclass(frozen=True)
class AgencyChoices:
    node_id: str
    name: str
    choices: tuple[Choice, ...]
    history: tuple[HistoryLine, ...]
    problem: str | None = None


def agency_choices(
    node_id: str,
    name: str,
    purposes: list[str],
    titles: dict[str, str],
    current: list[dict],
    history: list[dict],
) -> AgencyChoices:
    """The agency's rows; ``current`` and ``history`` are the node's answer."""
    given = {c["purpose"] for c in current if c.get("state") == "ConsentGiven"}
    last_state: dict[str, str] = {}
    for change in history:
        last_state[change["purpose"]] = change["state"]
    shown = list(purposes) + sorted(set(last_state) - set(purposes))
    choices = []
    for purpose in shown:
        is_given = purpose in given
        if is_given:
            status = "Consent given"
        elif purpose in last_state:
            status = {
                "ConsentWithdrawn": "Consent withdrawn",
                "ConsentRevoked": "Consent ended",
                "ConsentExpired": "Consent expired",
                "ConsentRefused": "Consent refused",
                "ConsentInvalidated": "Consent not valid",
            }.get(last_state[purpose], "No consent")
        else:
            status = "No consent given"
        choices.append(
            Choice(
                purpose=purpose,
                purpose_title=titles.get(purpose, purpose),
                is_given=is_given,
                status=status,
                action="withdraw" if is_given else "give",
            )
        )
    lines = tuple(
        HistoryLine(
            at=change["at"],
            purpose_title=titles.get(change["purpose"], change["purpose"]),
            what=STATE_WORDS.get(change["state"], change["state"]),
            note=change.get("note"),
        )
        for change in sorted(history, key=lambda c: c["at"], reverse=True)
    )
    return AgencyChoices(node_id, name, tuple(choices), lines)
