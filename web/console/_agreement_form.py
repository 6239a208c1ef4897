"""The agreement edit form: what it shows, and reading what a DPO sent back.

Pure: an agreement and a posted form in, a changed copy of the agreement or the errors out.
Each error is keyed by the id of the input it belongs to, so the page can put it inline
and link to it from the error summary (GOV.UK Design System, "Error message"). The checks
here are the ones a person can fix in the form (a date that is no date, an end before the
start, no purpose ticked); the lifecycle's validation then checks the whole documents.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

__all__ = [
    "NOT_SHARED",
    "OUTPUT_FORMS",
    "STATUSES",
    "AgreementForm",
    "FieldChoice",
    "agreement_form",
    "apply_agreement_form",
]

STATUSES = ("draft", "active", "suspended", "ended")
OUTPUT_FORMS = ("identifiable", "pseudonymised", "masked", "aggregate-only")
NOT_SHARED = "not-shared"
MAX_TITLE = 200
_DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")


@dataclass(frozen=True, slots=True)
class FieldChoice:
    """One field of one dataset: its input's name and the output form chosen for it."""

    name: str
    dataset: str
    node: str
    field: str
    output: str


@dataclass(frozen=True, slots=True)
class AgreementForm:
    """The values the form shows (from the agreement, or as sent when it had errors)."""

    title: str
    status: str
    start: str
    end: str
    purposes: tuple[str, ...]
    min_cell_size: str
    fields: tuple[FieldChoice, ...]


def _field_choices(agreement: dict[str, Any]) -> list[FieldChoice]:
    return [
        FieldChoice(
            name=f"field-{d_index}-{f_index}",
            dataset=dataset["id"],
            node=dataset["node"],
            field=entry["field"],
            output=entry["output"],
        )
        for d_index, dataset in enumerate(agreement.get("datasets", []))
        for f_index, entry in enumerate(dataset.get("fields", []))
    ]


def agreement_form(agreement: dict[str, Any]) -> AgreementForm:
    """The form filled in from ``agreement``."""
    return AgreementForm(
        title=str(agreement.get("title", "")),
        status=str(agreement.get("status", "")),
        start=str(agreement.get("start", "")),
        end=str(agreement.get("end", "")),
        purposes=tuple(agreement.get("purposes", [])),
        min_cell_size=str(agreement.get("disclosure", {}).get("min_cell_size", "")),
        fields=tuple(_field_choices(agreement)),
    )


def _read_date(value: str, label: str) -> tuple[date | None, str | None]:
    if not value:
        return None, f"Enter the {label}"
    if not _DATE.match(value):
        return None, f"The {label} must be a date like 2027-03-31 (year, month, day)"
    try:
        return date.fromisoformat(value), None
    except ValueError:
        return None, f"The {label} must be a real date, like 2027-03-31"


def apply_agreement_form(
    agreement: dict[str, Any], form: dict[str, str], purposes: dict[str, str]
) -> tuple[dict[str, Any] | None, AgreementForm, dict[str, str]]:
    """(changed agreement or None, the form as sent, errors by input id).

    ``form`` is the posted form, each field once; a ticked purpose comes as
    ``purpose-<id>=on``, since a form field may appear only once. ``purposes`` maps the
    register's purpose ids to their titles: only those may be ticked.
    """
    known = {"title", "status", "start", "end", "min_cell_size"}
    choices = _field_choices(agreement)
    known |= {c.name for c in choices} | {f"purpose-{p}" for p in purposes}
    unknown = sorted(set(form) - known)
    if unknown:
        raise ValueError(f"the form has fields this page never sends: {', '.join(unknown)}")
    errors: dict[str, str] = {}
    title = form.get("title", "").strip()
    if not title:
        errors["title"] = "Enter a title for the agreement"
    elif len(title) > MAX_TITLE:
        errors["title"] = f"The title must be {MAX_TITLE} characters or fewer"
    status = form.get("status", "")
    if status not in STATUSES:
        errors["status"] = "Select the agreement's status"
    start_text, end_text = form.get("start", "").strip(), form.get("end", "").strip()
    start, problem = _read_date(start_text, "start date")
    if problem:
        errors["start"] = problem
    end, problem = _read_date(end_text, "end date")
    if problem:
        errors["end"] = problem
    elif start is not None and end is not None and end < start:
        errors["end"] = "The end date must be the same as or after the start date"
    ticked = tuple(p for p in purposes if form.get(f"purpose-{p}") == "on")
    if not ticked:
        errors["purposes"] = "Select at least one purpose"
    cell_text = form.get("min_cell_size", "").strip()
    if not cell_text.isdigit():
        errors["min_cell_size"] = "The minimum cell size must be a whole number, like 10"
    outputs: dict[str, str] = {}
    for choice in choices:
        value = form.get(choice.name, "")
        if value not in (*OUTPUT_FORMS, NOT_SHARED):
            errors[choice.name] = f"Select how {choice.field} at {choice.node} is shared"
        outputs[choice.name] = value
    sent = AgreementForm(
        title=title,
        status=status,
        start=start_text,
        end=end_text,
        purposes=ticked,
        min_cell_size=cell_text,
        fields=tuple(
            FieldChoice(c.name, c.dataset, c.node, c.field, outputs[c.name]) for c in choices
        ),
    )
    if not errors:
        kept = [c for c in sent.fields if c.output != NOT_SHARED]
        datasets = {c.dataset for c in kept}
        gone = [d["id"] for d in agreement.get("datasets", []) if d["id"] not in datasets]
        if gone:
            first = next(c.name for c in choices if c.dataset == gone[0])
            errors[first] = (
                f"Keep at least one field of dataset {gone[0]} shared, or the dataset has "
                "nothing left to share"
            )
    if errors:
        return None, sent, errors
    changed = copy.deepcopy(agreement)
    changed.update(title=title, status=status, start=start_text, end=end_text)
    changed["purposes"] = list(ticked)
    changed.setdefault("disclosure", {})["min_cell_size"] = int(cell_text)
    by_name = {c.name: c.output for c in sent.fields}
    for d_index, dataset in enumerate(changed.get("datasets", [])):
        dataset["fields"] = [
            {**entry, "output": by_name[f"field-{d_index}-{f_index}"]}
            for f_index, entry in enumerate(dataset.get("fields", []))
            if by_name[f"field-{d_index}-{f_index}"] != NOT_SHARED
        ]
    return changed, sent, {}
