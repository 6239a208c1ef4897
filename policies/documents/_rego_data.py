"""The documents as the Rego reads them (``data.documents``)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from typing import Any

__all__ = ["rego_data"]

_NS = 1_000_000_000


def _day_ns(day: date) -> int:
    return calendar.timegm(day.timetuple()) * _NS


def _decision_view(agreement: dict[str, Any]) -> dict[str, Any]:
    forms: dict[str, dict[str, str]] = {}
    for dataset in agreement["datasets"]:
        node = forms.setdefault(dataset["node"], {})
        node.update({entry["field"]: entry["output"] for entry in dataset["fields"]})
    start = date.fromisoformat(agreement["start"])
    end = date.fromisoformat(agreement["end"]) + timedelta(days=1)
    return {
        "id": agreement["id"],
        "version": agreement["version"],
        "status": agreement["status"],
        "agencies": sorted({party["agency"] for party in agreement["parties"]}),
        "purposes": agreement["purposes"],
        "recipient_roles": agreement["recipient_roles"],
        "forms": forms,
        "disclosure": agreement["disclosure"],
        "consent_required": agreement["consent_required"],
        "national_data_opt_out_applies": agreement["national_data_opt_out_applies"],
        "start": agreement["start"],
        "end": agreement["end"],
        "start_ns": _day_ns(start),
        "end_ns": _day_ns(end),
    }


def rego_data(
    register: dict[str, Any], agreements: dict[str, Any], version: str | None = None
) -> dict[str, Any]:
    """What the Rego decides from: a slim, indexed view of the validated documents.

    regopy's cost per decision grows with the size of the data a rule touches, and it does
    not cache a comprehension-built rule across function calls, so Python prepares the view
    once: agreements keyed by id, only the keys a decision reads, the parties' agencies as a
    list, output forms indexed by node and then field, and dates as nanoseconds (UTC), since
    regopy cannot parse RFC 3339 times ending in ``Z``. An agreement runs from the start of
    its start day to the end of its end day, so ``end_ns`` is midnight after the end date.
    The full documents stay with the DPO tools and the audit ledger.

    ``version`` is the string every decision carries (a published version's
    ``policy_version``, such as "v3 (agreements 2026-11-26, purposes 2026-11-01)"); without
    it, the documents' own versions.
    """
    default = f"agreements {agreements['version']}, purposes {register['version']}"
    return {
        "policy_version": default if version is None else version,
        "purposes": sorted(purpose["id"] for purpose in register["purposes"]),
        "agreements": {a["id"]: _decision_view(a) for a in agreements["agreements"]},
    }
