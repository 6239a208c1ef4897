"""A permit's row filters, as SQL: rows a purpose may not see are never fetched.

The deciding agreement's obligations name row filters (only subjects with a current
consent for this purpose; not those on the national data opt-out list; only records inside
the agreement's dates). Each becomes a WHERE clause on the query that reads the data
(EXISTS / NOT EXISTS on the consent and opt-out tables), so a withdrawal or an opt-out
takes effect on the very next query and no excluded row ever reaches Python. An unknown
kind of filter refuses the read: a filter the node cannot apply is never skipped.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import not_, or_
from sqlalchemy.sql import Select

from datatrust.errors import AccessDenied
from datatrust.policies import Permit
from datatrust.trust import has_current_consent, not_opted_out

__all__ = ["restrict"]


def restrict(
    query: Select,
    permit: Permit,
    *,
    subject: Any | None,
    when: Any | None,
    when_is_date: bool = False,
    now: datetime | None = None,
) -> Select:
    """``query`` narrowed by every row filter of ``permit``.

    ``subject`` is the column holding the person's trust pseudonym (None for tables about
    no person, such as sensor readings, where consent and opt-out filters have nothing to
    act on); ``when`` is the column dating the record (None where records have no date).
    A consent or opt-out filter on a table with a subject column always applies, so rows
    without a pseudonym (no NHS number known) never pass a consent filter.
    """
    now = now or permit.decided_at
    for row_filter in permit.obligations.row_filters:
        kind = row_filter.get("kind")
        if kind == "consent":
            if subject is not None:
                purpose = str(row_filter.get("purpose") or permit.purpose)
                query = query.where(has_current_consent(subject, purpose=purpose, now=now))
        elif kind == "national_data_opt_out":
            if subject is not None:
                query = query.where(not_opted_out(subject))
        elif kind == "agreement_period":
            if when is not None:
                start, end = _period(row_filter)
                if not when_is_date:
                    start, end = _midnight(start), _midnight(end)
                query = query.where(_inside(when, start, end))
        else:
            raise AccessDenied(
                f"access denied: the policy asks for a row filter this node cannot apply "
                f"({kind!r}), so nothing is read",
                policy_version=permit.policy_version,
            )
    return query


def _inside(when: Any, start: date | datetime, end: date | datetime) -> Any:
    """``start <= when < end``, written so that it never changes the query's plan.

    The query mostly bounds the same column already (the period asked about). SQLite reads
    a second pair of range terms on an indexed column as a reason to walk the index
    differently (a skip-scan over every area instead of one seek per area asked about),
    which made an enforced roll-up query twice as slow as the same query unenforced (see
    bench/policy.py). As ``NOT (when < start OR when >= end)`` it is checked on the rows
    the query's own plan finds; PostgreSQL folds it back into the same range. A NULL
    ``when`` still fails it.
    """
    return not_(or_(when < start, when >= end))


def _period(row_filter: dict[str, Any]) -> tuple[date, date]:
    """The agreement's first day and the day after its last (an end date is inclusive)."""
    start = date.fromisoformat(str(row_filter["from"]))
    end = date.fromisoformat(str(row_filter["until"])) + timedelta(days=1)
    return start, end


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)
