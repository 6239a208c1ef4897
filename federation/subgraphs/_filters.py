"""A permit's row filters, as SQL: rows a purpose may not see are never fetched.

The deciding agreement's obligations name row filters (only subjects with a current
consent for this purpose; not those on the national data opt-out list; only records inside
the agreement's dates). Each becomes a WHERE clause on the query that reads the data
(a semi-join on the consent table, anti-joins on the national opt-out list and on the
opt-outs citizens registered in the portal), so a withdrawal or an opt-out
takes effect on the very next query and no excluded row ever reaches Python. An unknown
kind of filter refuses the read: a filter the node cannot apply is never skipped.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.sql import Select

from datatrust.errors import AccessDenied
from datatrust.policies import Permit
from datatrust.trust import has_current_consent, not_opted_out, not_opted_out_by_citizen

__all__ = ["restrict"]


def restrict(
    query: Select,
    permit: Permit,
    *,
    subject: Any | None,
    when: Any | None,
    when_is_date: bool = False,
    since: date | None = None,
    until: date | None = None,
    now: datetime | None = None,
) -> Select:
    """``query`` narrowed by every row filter of ``permit``, and to the period asked for.

    ``subject`` is the column holding the person's trust pseudonym (None for tables about
    no person, such as sensor readings, where consent and opt-out filters have nothing to
    act on); ``when`` is the column dating the record (None where records have no date).
    A consent or opt-out filter on a table with a subject column always applies, so rows
    without a pseudonym (no NHS number known) never pass a consent filter.

    ``since`` and ``until`` (whole days, ``until`` inclusive) are the period the request
    asked about. The agreement's own dates are intersected with them into one range on
    ``when``, so an enforced query has exactly the shape of an unenforced one over a
    narrower period, and the database keeps its plan (two overlapping ranges on one
    indexed column made SQLite scan every area instead of seeking each).
    """
    now = now or permit.decided_at
    first, after = since, until + timedelta(days=1) if until else None
    for row_filter in permit.obligations.row_filters:
        kind = row_filter.get("kind")
        if kind == "consent":
            if subject is not None:
                purpose = str(row_filter.get("purpose") or permit.purpose)
                query = query.where(has_current_consent(subject, purpose=purpose, now=now))
        elif kind == "national_data_opt_out":
            if subject is not None:
                # The NHS list as last loaded, and the opt-outs citizens registered in the
                # trust's portal (kept apart, so a reload of the list never drops them).
                query = query.where(not_opted_out(subject), not_opted_out_by_citizen(subject))
        elif kind == "agreement_period":
            agreed_first, agreed_after = _period(row_filter)
            first = agreed_first if first is None else max(first, agreed_first)
            after = agreed_after if after is None else min(after, agreed_after)
        else:
            raise AccessDenied(
                f"access denied: the policy asks for a row filter this node cannot apply "
                f"({kind!r}), so nothing is read",
                policy_version=permit.policy_version,
            )
    if when is not None:
        if first is not None:
            query = query.where(when >= (first if when_is_date else _midnight(first)))
        if after is not None:
            query = query.where(when < (after if when_is_date else _midnight(after)))
    return query


def _period(row_filter: dict[str, Any]) -> tuple[date, date]:
    """The agreement's first day and the day after its last (an end date is inclusive)."""
    start = date.fromisoformat(str(row_filter["from"]))
    end = date.fromisoformat(str(row_filter["until"])) + timedelta(days=1)
    return start, end


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)
