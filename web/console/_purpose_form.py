"""The purpose register's forms: adding a purpose, changing one, removing one.

Pure: a register (and the agreements, for removal) and a posted form in, a changed copy of
the register or the errors out, each keyed by the id of the input it belongs to (GOV.UK
Design System, "Error message"). The checks here are those a person fixes in the form and
that the schema (``purpose-register.schema.json``) states field by field; the lifecycle's
validation then checks the whole documents, as ``datatrust policy validate`` does.

A purpose's id cannot be changed: agreements, requests and the audit ledger name it, so a
new id is a new purpose (add it, move agreements to it, remove the old one).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OPT_OUT_CHOICES",
    "PurposeForm",
    "apply_purpose_form",
    "problem_target",
    "purpose_form",
    "remove_purpose",
]

MAX_TITLE = 200
OPT_OUT_CHOICES = ("yes", "no")
_ID = re.compile(r"\A[a-z][a-z0-9-]*\Z")
_DPV = re.compile(r"\A(dpv|datatrust):[A-Za-z]+\Z")
_DPV_PARENT = re.compile(r"\Adpv:[A-Za-z]+\Z")
_FIELDS = ("title", "dpv", "dpv_parent", "opt_out")


@dataclass(frozen=True, slots=True)
class PurposeForm:
    """The values the form shows (from the purpose, or as sent when it had errors)."""

    id: str
    title: str
    dpv: str
    dpv_parent: str
    opt_out: str


def purpose_form(purpose: dict[str, Any] | None = None) -> PurposeForm:
    """The form filled in from ``purpose``, or empty for a new one."""
    purpose = purpose or {}
    applies = purpose.get("national_data_opt_out_applies")
    return PurposeForm(
        id=str(purpose.get("id", "")),
        title=str(purpose.get("title", "")),
        dpv=str(purpose.get("dpv", "")),
        dpv_parent=str(purpose.get("dpv_parent", "")),
        opt_out={True: "yes", False: "no"}.get(applies, ""),
    )


def apply_purpose_form(
    register: dict[str, Any], form: dict[str, str], ident: str | None = None
) -> tuple[dict[str, Any] | None, PurposeForm, dict[str, str]]:
    """(changed register or None, the form as sent, errors by input id).

    ``ident`` is the purpose being changed; None adds a new one, whose id the form names.
    ``ValueError`` for a field this form never sends (a forged or stale form).
    """
    known = set(_FIELDS) | ({"id"} if ident is None else set())
    unknown = sorted(set(form) - known)
    if unknown:
        raise ValueError(f"the form has fields this page never sends: {', '.join(unknown)}")
    listed = register.get("purposes", [])
    existing = {p.get("id") for p in listed}
    errors: dict[str, str] = {}
    new_id = form.get("id", "").strip() if ident is None else ident
    if ident is None:
        if not new_id:
            errors["id"] = "Enter an identifier for the purpose, like service-planning"
        elif not _ID.match(new_id):
            errors["id"] = (
                "The identifier must start with a lowercase letter and use only lowercase "
                "letters, digits and hyphens, like service-planning"
            )
        elif new_id in existing:
            errors["id"] = f"There is already a purpose {new_id}: choose another identifier"
    title = form.get("title", "").strip()
    if not title:
        errors["title"] = "Enter a title for the purpose"
    elif len(title) > MAX_TITLE:
        errors["title"] = f"The title must be {MAX_TITLE} characters or fewer"
    dpv = form.get("dpv", "").strip()
    if not dpv:
        errors["dpv"] = "Enter the purpose's W3C DPV term, like dpv:ScientificResearch"
    elif not _DPV.match(dpv):
        errors["dpv"] = (
            "The DPV term must be dpv: or datatrust: followed by letters only, like "
            "dpv:ScientificResearch"
        )
    parent = form.get("dpv_parent", "").strip()
    if parent and not _DPV_PARENT.match(parent):
        errors["dpv_parent"] = (
            "The broader DPV term must be dpv: followed by letters only, like dpv:PublicBenefit"
        )
    opt_out = form.get("opt_out", "")
    if opt_out not in OPT_OUT_CHOICES:
        errors["opt_out"] = "Select whether the national data opt-out applies"
    sent = PurposeForm(id=new_id, title=title, dpv=dpv, dpv_parent=parent, opt_out=opt_out)
    if errors:
        return None, sent, errors
    purpose: dict[str, Any] = {"id": new_id, "title": title, "dpv": dpv}
    if parent:
        purpose["dpv_parent"] = parent
    purpose["national_data_opt_out_applies"] = opt_out == "yes"
    changed = copy.deepcopy(register)
    if ident is None:
        changed["purposes"] = [*changed.get("purposes", []), purpose]
    else:
        changed["purposes"] = [
            purpose if p.get("id") == ident else p for p in changed.get("purposes", [])
        ]
    return changed, sent, {}


def remove_purpose(
    register: dict[str, Any], agreements: dict[str, Any], ident: str, agency: str
) -> tuple[dict[str, Any] | None, str | None]:
    """(register without ``ident``, None), or (None, why not) while an agreement uses it.

    Agreements of other agencies count too (the register is the whole trust's), but only
    ``agency``'s own are named: another agency's agreements are not this DPO's to see.
    """
    users = [a for a in agreements.get("agreements", []) if ident in a.get("purposes", [])]
    if users:
        own = [
            a.get("id", "")
            for a in users
            if any(p.get("agency") == agency for p in a.get("parties", []))
        ]
        others = len(users) - len(own)
        named = []
        if own:
            named.append(f"your agreement{'s' if len(own) > 1 else ''} {', '.join(own)}")
        if others:
            named.append(f"{others} agreement{'s' if others > 1 else ''} of other organisations")
        return None, (
            f"The purpose {ident} cannot be removed: {' and '.join(named)} still "
            f"use{'s' if len(users) == 1 else ''} it. Take it out of "
            f"{'them' if len(users) > 1 else 'that agreement'} first"
        )
    changed = copy.deepcopy(register)
    changed["purposes"] = [p for p in changed.get("purposes", []) if p.get("id") != ident]
    return changed, None


def problem_target(document: str, path: str, fallback: str) -> str:
    """The form input a validation problem (document, JSON path) is best linked to."""
    if document == "purpose register":
        for key, target in (
            (".dpv_parent", "dpv_parent"),
            (".dpv", "dpv"),
            (".title", "title"),
            (".national_data_opt_out_applies", "opt_out"),
            (".id", "id"),
        ):
            if path.endswith(key):
                return target if target != "id" or fallback == "id" else fallback
    return fallback
