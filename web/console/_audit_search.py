"""Searching the audit ledger of the DPO's own agency, and exporting it as CSV.

A DPO sees the decisions their agency's node made (who asked, for what purpose, what was
decided and why); other agencies' ledgers are their DPOs' to read. Every node's chain
status is shown to all, since it says only whether a ledger is intact. Filters are read
and checked here (pure), with errors keyed by input id for the page to show inline.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

__all__ = [
    "CSV_COLUMNS",
    "AuditFilters",
    "AuditRow",
    "agency_nodes",
    "audit_csv",
    "read_filters",
    "search_audit",
]

OUTCOMES = ("permit", "deny")
_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
CSV_COLUMNS = (
    "recorded_at", "node", "requester", "agency", "roles", "client_id", "purpose",
    "operation", "fields", "outcome", "code", "agreement", "reason", "policy_version",
    "row_count", "subject_count",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AuditFilters:
    requester: str = ""
    purpose: str = ""
    outcome: str = ""
    date_from: str = ""
    date_to: str = ""

    def query(self) -> str:
        from urllib.parse import urlencode

        values = {
            "requester": self.requester,
            "purpose": self.purpose,
            "outcome": self.outcome,
            "from": self.date_from,
            "to": self.date_to,
        }
        return urlencode({k: v for k, v in values.items() if v})


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    recorded_at: datetime
    entry: object


def _day(value: str, label: str) -> tuple[date | None, str | None]:
    if not value:
        return None, None
    if not _DATE.match(value):
        return None, f"The {label} must be a date like 2026-11-01 (year, month, day)"
    try:
        return date.fromisoformat(value), None
    except ValueError:
        return None, f"The {label} must be a real date, like 2026-11-01"


def read_filters(params, purposes: dict[str, str]) -> tuple[AuditFilters, dict[str, str]]:
    """The filters in the query string, and errors by input id."""
    filters = AuditFilters(
        requester=params.get("requester", "").strip()[:200],
        purpose=params.get("purpose", ""),
        outcome=params.get("outcome", ""),
        date_from=params.get("from", "").strip(),
        date_to=params.get("to", "").strip(),
    )
    errors: dict[str, str] = {}
    if filters.purpose and filters.purpose not in purposes:
        errors["purpose"] = "Select a purpose from the list"
    if filters.outcome and filters.outcome not in OUTCOMES:
        errors["outcome"] = "Select allowed, refused or any outcome"
    start, problem = _day(filters.date_from, "from date")
    if problem:
        errors["from"] = problem
    end, problem = _day(filters.date_to, "to date")
    if problem:
        errors["to"] = problem
    elif start and end and end < start:
        errors["to"] = "The to date must be the same as or after the from date"
    return filters, errors


def agency_nodes(agency: str) -> list[str]:
    """The nodes whose ledgers a DPO of ``agency`` reads: their agency's own."""
    from datatrust._demo_trust import DEMO_NODES

    return [node.node_id for node in DEMO_NODES if node.node_id == agency]


def search_audit(data_dir: Path, agency: str, filters: AuditFilters) -> list[AuditRow]:
    """The agency's node ledger entries matching ``filters``, newest first."""
    from datatrust._audit_cli import part_settings
    from datatrust.store import create_store_engine
    from datatrust.trust import read_audit_entries

    since = (
        datetime.combine(date.fromisoformat(filters.date_from), time(), UTC)
        if filters.date_from
        else None
    )
    until = (
        datetime.combine(date.fromisoformat(filters.date_to), time(), UTC) + timedelta(days=1)
        if filters.date_to
        else None
    )
    needle = filters.requester.lower()
    rows: list[AuditRow] = []
    for node in agency_nodes(agency):
        url = part_settings(data_dir, node).effective_database_url
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            continue
        engine = create_store_engine(url)
        try:
            entries = read_audit_entries(engine, since=since)
        finally:
            engine.dispose()
        for seq, recorded_at, entry in entries:
            if recorded_at.tzinfo is None:
                recorded_at = recorded_at.replace(tzinfo=UTC)
            if until is not None and recorded_at >= until:
                continue
            if filters.purpose and entry.purpose != filters.purpose:
                continue
            if filters.outcome and entry.outcome != filters.outcome:
                continue
            if needle and needle not in entry.requester.lower():
                continue
            rows.append(AuditRow(seq, recorded_at, entry))
    return sorted(rows, key=lambda r: r.recorded_at, reverse=True)


def audit_csv(rows: list[AuditRow]) -> str:
    """The rows as CSV (RFC 4180), one line per decision, with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        e = row.entry
        cells = [
            row.recorded_at.astimezone(UTC).isoformat(),
            e.node_id, e.requester, e.agency or "", " ".join(e.roles), e.client_id or "",
            e.purpose or "", e.operation, " ".join(e.fields), e.outcome, e.code,
            e.agreement or "", e.reason, e.policy_version,
            "" if e.row_count is None else e.row_count,
            "" if e.subject_count is None else e.subject_count,
        ]  # fmt: skip
        writer.writerow([_cell(value) for value in cells])
    return out.getvalue()


def _cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula is prefixed with ' (OWASP CSV
    injection); numbers are left as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
