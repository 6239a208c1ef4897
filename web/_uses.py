"""What "Who used your data" shows, from what the nodes' ledgers answered: pure, no I/O.

Each node answers ``dataUses`` with its ledger's entries about the signed-in citizen, in
the ledger's own terms (agency id, purpose id, ``Type.field`` names, agreement id, policy
version). This module turns them into words a person can read: the organisation's name,
the purpose's title from the register, the kinds of data in plain English, and the lawful
basis written in the agreement (UK GDPR Art. 6 and, for health and care data, Art. 9)
as it stood in the policy version that permitted the use. It also filters the rows and
writes them as CSV that a spreadsheet cannot mistake for formulas.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ARTICLE_6",
    "ARTICLE_9",
    "CSV_HEADER",
    "FIELD_WORDS",
    "Documents",
    "Use",
    "filter_uses",
    "kinds_of_data",
    "lawful_basis_words",
    "safe_cell",
    "use_rows",
    "uses_csv",
]

ARTICLE_6 = {
    "6(1)(a)": "your consent",
    "6(1)(b)": "a contract with you",
    "6(1)(c)": "a legal obligation",
    "6(1)(d)": "protecting someone's life",
    "6(1)(e)": "a task in the public interest",
    "6(1)(ea)": "a task in the public interest (data protection law, section 8)",
    "6(1)(f)": "legitimate interests",
}
"""UK GDPR Art. 6(1) lawful bases, in plain words."""

ARTICLE_9 = {
    "9(2)(a)": "your explicit consent",
    "9(2)(b)": "employment and social security law",
    "9(2)(c)": "protecting someone's life",
    "9(2)(g)": "substantial public interest",
    "9(2)(h)": "health or social care",
    "9(2)(i)": "public health",
    "9(2)(j)": "research, archiving or statistics in the public interest",
}
"""UK GDPR Art. 9(2) conditions for health and care data, in plain words."""

FIELD_WORDS = {
    "Person.pseudonym": "a code that stands in for your name",
    "Person.birthYear": "your year of birth",
    "Person.gender": "your gender",
    "Person.areaCode": "the area you live in",
    "Person.encounters": "your hospital visits",
    "Encounter.start": "hospital visit dates",
    "Encounter.end": "hospital visit dates",
    "Encounter.classCode": "the kind of hospital visit",
    "Encounter.status": "the status of hospital visits",
    "Person.careEpisodes": "your social care support",
    "CareEpisode.eventType": "the kind of social care support",
    "CareEpisode.serviceType": "the social care services you had",
    "CareEpisode.start": "social care dates",
    "CareEpisode.end": "social care dates",
    "Area.encounterCount": "counts of hospital visits in your area",
    "Area.openCareEpisodes": "counts of social care support in your area",
}
"""The record fields the nodes serve, as a person would name them."""
_UNDESCRIBED = ("Area.code", "Area.name", "Query.", "_Service.", "_Entity.")
"""Parts of a request that say where or how, not what about you: not listed as data."""

CSV_HEADER = (
    "When (UTC)",
    "Organisation",
    "Purpose",
    "Kinds of data",
    "Lawful basis",
    "Agreement",
    "Recorded by",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Use:
    """One row of the page and of the CSV file."""

    at: datetime
    agency: str
    organisation: str
    purpose: str
    purpose_title: str
    kinds: tuple[str, ...]
    lawful_basis: str
    agreement: str
    recorded_by: str
    seq: int


class Documents:
    """The trust's agreements and purpose register, per policy version, as the nodes used them.

    ``versions`` maps each policy version string (as the audit records it) to its
    ``(register, agreements)`` documents; ``current`` is the version in force, used when
    an entry names a version no longer stored.
    """

    def __init__(
        self,
        versions: Mapping[str, tuple[dict[str, Any], dict[str, Any]]],
        current: str,
    ) -> None:
        self.versions = dict(versions)
        self.current = current

    def _of(self, policy_version: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.versions.get(policy_version) or self.versions[self.current]

    def purpose_title(self, purpose: str | None, policy_version: str) -> str:
        if not purpose:
            return "No purpose recorded"
        for entry in self._of(policy_version)[0].get("purposes", []):
            if entry.get("id") == purpose:
                return str(entry.get("title") or purpose)
        return purpose

    def agreement(self, ident: str | None, policy_version: str) -> dict[str, Any] | None:
        if not ident:
            return None
        for agreement in self._of(policy_version)[1].get("agreements", []):
            if agreement.get("id") == ident:
                return agreement
        return None


def lawful_basis_words(agreement: Mapping[str, Any] | None) -> str:
    """'Article 6(1)(e): a task in the public interest; Article 9(2)(j): ...'."""
    if agreement is None:
        return "Not recorded"
    basis = agreement.get("lawful_basis") or {}
    parts = []
    for key, words in (("article_6", ARTICLE_6), ("article_9", ARTICLE_9)):
        code = basis.get(key)
        if code:
            plain = words.get(code)
            parts.append(f"Article {code}: {plain}" if plain else f"Article {code}")
    return "; ".join(parts) or "Not recorded"


def _camel_words(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def kinds_of_data(fields: Iterable[str]) -> tuple[str, ...]:
    """The kinds of data a request read, in plain words, each once, in a stable order."""
    kinds: list[str] = []
    for field in fields:
        if field.startswith(_UNDESCRIBED) or "." not in field:
            continue
        words = FIELD_WORDS.get(field) or _camel_words(field.split(".", 1)[1])
        if words not in kinds:
            kinds.append(words)
    return tuple(kinds)


def use_rows(
    answers: Mapping[str, list[dict[str, Any]]],
    node_names: Mapping[str, str],
    agency_names: Mapping[str, str],
    documents: Documents,
) -> list[Use]:
    """Every node's uses as page rows, newest first (``answers`` by node id)."""
    rows = []
    for node_id, uses in answers.items():
        for use in uses:
            version = str(use.get("policyVersion") or "")
            agency = str(use.get("agency") or "")
            agreement = documents.agreement(use.get("agreement"), version)
            at = use["at"]
            if isinstance(at, str):
                at = datetime.fromisoformat(at)
            rows.append(
                Use(
                    at=at,
                    agency=agency,
                    organisation=agency_names.get(agency) or agency or "Unknown organisation",
                    purpose=str(use.get("purpose") or ""),
                    purpose_title=documents.purpose_title(use.get("purpose"), version),
                    kinds=kinds_of_data(use.get("fields") or ()),
                    lawful_basis=lawful_basis_words(agreement),
                    agreement=str(agreement.get("title")) if agreement else "Not recorded",
                    recorded_by=node_names.get(node_id, node_id),
                    seq=int(use.get("seq") or 0),
                )
            )
    rows.sort(key=lambda row: (row.at, row.recorded_by, row.seq), reverse=True)
    return rows


def filter_uses(rows: Iterable[Use], *, agency: str = "", purpose: str = "") -> list[Use]:
    """The rows for one organisation and/or purpose (empty: any)."""
    return [
        row
        for row in rows
        if (not agency or row.agency == agency) and (not purpose or row.purpose == purpose)
    ]


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading quote.

    OWASP's advice against CSV injection: a cell beginning ``=``, ``+``, ``-``, ``@``, tab
    or carriage return is prefixed with ``'`` so it is never evaluated.
    """
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def uses_csv(rows: Iterable[Use]) -> str:
    """The rows as CSV (RFC 4180, header first), every cell made safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        cells = (
            row.at.astimezone(UTC).isoformat(timespec="seconds"),
            row.organisation,
            row.purpose_title,
            "; ".join(row.kinds),
            row.lawful_basis,
            row.agreement,
            row.recorded_by,
        )
        writer.writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()
