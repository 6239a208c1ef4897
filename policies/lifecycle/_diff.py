"""What changed between two sets of documents, in words a DPO reads without a JSON diff.

Pure: documents in, sentences out, ordered by agreement id so two runs print the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["diff_documents"]


def _yes(value: Any) -> str:
    return {True: "yes", False: "no"}.get(value, repr(value))


def _listed(values: list[Any]) -> str:
    return ", ".join(str(v) for v in values) or "none"


def _forms(agreement: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (dataset["node"], entry["field"]): entry["output"]
        for dataset in agreement.get("datasets", [])
        for entry in dataset.get("fields", [])
    }


# (label, how to read it from an agreement, how to show it)
_SCALARS: tuple[tuple[str, Callable[[dict], Any], Callable[[Any], str]], ...] = (
    ("status", lambda a: a.get("status"), str),
    ("version", lambda a: a.get("version"), str),
    ("title", lambda a: a.get("title"), repr),
    ("start date", lambda a: a.get("start"), str),
    ("end date", lambda a: a.get("end"), str),
    ("review date", lambda a: a.get("review_date"), str),
    ("min cell size", lambda a: a.get("disclosure", {}).get("min_cell_size"), str),
    ("rounding base", lambda a: a.get("disclosure", {}).get("rounding_base"), str),
    ("consent required", lambda a: a.get("consent_required"), _yes),
    (
        "national data opt-out applies",
        lambda a: a.get("national_data_opt_out_applies"),
        _yes,
    ),
    ("Art. 6 basis", lambda a: a.get("lawful_basis", {}).get("article_6"), str),
    ("Art. 9 condition", lambda a: a.get("lawful_basis", {}).get("article_9"), str),
    (
        "common law confidentiality",
        lambda a: a.get("lawful_basis", {}).get("common_law_confidentiality"),
        repr,
    ),
    ("retention", lambda a: a.get("retention"), lambda r: f"{r['period']} then {r['action']}"),
    ("DPIA reference", lambda a: a.get("dpia_reference"), str),
)

# (label, how to read a set of names from an agreement)
_SETS: tuple[tuple[str, Callable[[dict], set[str]]], ...] = (
    ("purpose", lambda a: set(a.get("purposes", []))),
    ("recipient role", lambda a: set(a.get("recipient_roles", []))),
    (
        "party",
        lambda a: {f"{p['agency']} ({p['role']})" for p in a.get("parties", [])},
    ),
    (
        "dataset",
        lambda a: {f"{d['id']} at {d['node']}" for d in a.get("datasets", [])},
    ),
)


def _agreement_changes(old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    ident = new["id"]
    for label, read, show in _SCALARS:
        before, after = read(old), read(new)
        if before != after:
            yield f"agreement {ident}: {label} {show(before)} -> {show(after)}"
    for label, read in _SETS:
        before, after = read(old), read(new)
        for name in sorted(after - before):
            yield f"agreement {ident}: {label} {name} added"
        for name in sorted(before - after):
            yield f"agreement {ident}: {label} {name} removed"
    before_forms, after_forms = _forms(old), _forms(new)
    for node, field in sorted(before_forms.keys() | after_forms.keys()):
        before = before_forms.get((node, field), "absent")
        after = after_forms.get((node, field), "removed")
        if (node, field) not in before_forms:
            yield f"agreement {ident}: {field} at {node}: added as {after}"
        elif before != after:
            yield f"agreement {ident}: {field} at {node}: {before} -> {after}"


def _summary(agreement: dict[str, Any]) -> str:
    parties = _listed(sorted(p["agency"] for p in agreement.get("parties", [])))
    return (
        f"({agreement.get('status')}; purposes {_listed(agreement.get('purposes', []))}; "
        f"parties {parties}; {agreement.get('start')} to {agreement.get('end')})"
    )


def _register_changes(old: dict[str, Any], new: dict[str, Any]) -> Iterator[str]:
    if old.get("version") != new.get("version"):
        yield f"purpose register: version {old.get('version')} -> {new.get('version')}"
    before = {p["id"]: p for p in old.get("purposes", [])}
    after = {p["id"]: p for p in new.get("purposes", [])}
    for ident in sorted(after.keys() - before.keys()):
        yield f"purpose {ident} added to the register ({after[ident].get('title')!r})"
    for ident in sorted(before.keys() - after.keys()):
        yield f"purpose {ident} removed from the register"
    for ident in sorted(before.keys() & after.keys()):
        for key in sorted(before[ident].keys() | after[ident].keys()):
            was, now = before[ident].get(key), after[ident].get(key)
            if was != now:
                words = key.replace("_", " ")
                yield f"purpose {ident}: {words} {was!r} -> {now!r}"


def diff_documents(
    old_register: dict[str, Any],
    old_agreements: dict[str, Any],
    new_register: dict[str, Any],
    new_agreements: dict[str, Any],
) -> list[str]:
    """Each change from the old documents to the new, as one sentence; empty when equal."""
    changes = list(_register_changes(old_register, new_register))
    if old_agreements.get("version") != new_agreements.get("version"):
        changes.append(
            f"agreements: version {old_agreements.get('version')} -> "
            f"{new_agreements.get('version')}"
        )
    before = {a["id"]: a for a in old_agreements.get("agreements", [])}
    after = {a["id"]: a for a in new_agreements.get("agreements", [])}
    for ident in sorted(before.keys() | after.keys()):
        if ident not in before:
            changes.append(f"agreement {ident} added {_summary(after[ident])}")
        elif ident not in after:
            changes.append(f"agreement {ident} removed (was {before[ident].get('status')})")
        else:
            changes.extend(_agreement_changes(before[ident], after[ident]))
    return changes
