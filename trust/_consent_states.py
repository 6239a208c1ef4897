"""The consent lifecycle as a transition table: which change may follow which state.

States are the W3C Data Privacy Vocabulary's (``dpv:ConsentStatus``); the changes are
what a person or a controller does to a record. The rules, in words:

* Consent may be given when there is no record yet, and given again after it was refused,
  withdrawn, revoked, invalidated or has expired (a fresh consent). Giving it while it is
  current renews it (a new time of giving and a new expiry).
* Only a current consent (``ConsentGiven`` and not past its expiry) can end: the person
  themself *withdraws* it (``ConsentWithdrawn``), anyone else *revokes* it on their behalf
  (``ConsentRevoked``).
* Expiry is not a change anyone makes: a ``ConsentGiven`` record whose ``expires_at`` has
  passed reads as ``ConsentExpired`` from that instant (:func:`effective_state`), so no
  sweep has to run before a query stops counting it.

Everything else is refused with :class:`~datatrust.errors.ConsentStateConflict`. This module
is pure: no clock, no database.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from datatrust.errors import ConsentStateConflict

__all__ = ["TRANSITIONS", "ConsentChange", "ConsentState", "effective_state", "next_state"]


class ConsentState(StrEnum):
    """``dpv:ConsentStatus`` values a record can be in."""

    GIVEN = "ConsentGiven"
    REFUSED = "ConsentRefused"
    WITHDRAWN = "ConsentWithdrawn"
    REVOKED = "ConsentRevoked"
    EXPIRED = "ConsentExpired"
    INVALIDATED = "ConsentInvalidated"


class ConsentChange(StrEnum):
    """What someone does to a consent record."""

    GIVE = "give"
    WITHDRAW = "withdraw"  # by the person themself
    REVOKE = "revoke"  # by someone else, on the person's behalf


_S, _C = ConsentState, ConsentChange

TRANSITIONS: dict[tuple[ConsentState | None, ConsentChange], ConsentState] = {
    (None, _C.GIVE): _S.GIVEN,
    (_S.GIVEN, _C.GIVE): _S.GIVEN,
    (_S.REFUSED, _C.GIVE): _S.GIVEN,
    (_S.WITHDRAWN, _C.GIVE): _S.GIVEN,
    (_S.REVOKED, _C.GIVE): _S.GIVEN,
    (_S.EXPIRED, _C.GIVE): _S.GIVEN,
    (_S.INVALIDATED, _C.GIVE): _S.GIVEN,
    (_S.GIVEN, _C.WITHDRAW): _S.WITHDRAWN,
    (_S.GIVEN, _C.REVOKE): _S.REVOKED,
}
"""(state now, or None for no record yet; change) -> state after. Anything else is refused."""

_WHY_NOT = {
    None: "no consent was ever given",
    _S.REFUSED: "consent was refused, never given",
    _S.WITHDRAWN: "consent is already withdrawn",
    _S.REVOKED: "consent is already revoked",
    _S.EXPIRED: "consent has already expired",
    _S.INVALIDATED: "consent was invalidated",
}


def effective_state(
    stored: ConsentState | str, expires_at: datetime | None, now: datetime
) -> ConsentState:
    """The state a record is in at ``now``: a given consent past its expiry has expired."""
    state = ConsentState(stored)
    if state is ConsentState.GIVEN and expires_at is not None and expires_at <= now:
        return ConsentState.EXPIRED
    return state


def next_state(current: ConsentState | None, change: ConsentChange, *, record: str) -> ConsentState:
    """The state after ``change``, or ConsentStateConflict naming ``record`` and why not."""
    after = TRANSITIONS.get((current, change))
    if after is None:
        why = _WHY_NOT.get(current, f"the record is {current}")
        raise ConsentStateConflict(
            f"cannot {change.value} the consent of {record}: {why}, so there is nothing to "
            f"{change.value}",
            change=change.value,
            state=None if current is None else current.value,
        )
    return after
