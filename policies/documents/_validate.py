"""Validation of the purpose register and the agreements: schema first, then meaning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

__all__ = ["DocumentProblem", "demo_agreements", "demo_register", "validate_documents"]


@dataclass(frozen=True, slots=True, order=True)
class DocumentProblem:
    """One thing wrong with a document: which document, where in it (a JSON path), and what."""

    document: str
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.document} {self.path}: {self.problem}"


def _load_json(package: str, name: str) -> Any:
    return json.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))


def demo_register() -> dict[str, Any]:
    """The demo trust's purpose register (owned by ``datatrust.trust``; read, not copied)."""
    return _load_json("datatrust.trust", "data/purposes.json")


def demo_agreements() -> dict[str, Any]:
    """The demo trust's data-sharing agreements."""
    return _load_json("datatrust.policies", "data/agreements.json")


def _schema_problems(document: str, schema_name: str, value: Any) -> list[DocumentProblem]:
    validator = Draft202012Validator(_load_json("datatrust.policies", f"data/{schema_name}"))
    return [
        DocumentProblem(document, error.json_path, error.message)
        for error in validator.iter_errors(value)
    ]


def validate_documents(
    register: dict[str, Any], agreements: dict[str, Any]
) -> list[DocumentProblem]:
    """Every problem with the register and the agreements, sorted; empty means publishable.

    Meaning is checked only once both documents pass their schemas, so each problem names a
    real mistake rather than the echo of a missing key.
    """
    problems = _schema_problems("purpose register", "purpose-register.schema.json", register)
    problems += _schema_problems("agreements", "agreements.schema.json", agreements)
    if problems:
        return sorted(problems)
    known = {purpose["id"] for purpose in register["purposes"]}
    problems += _duplicates(
        "purpose register", "$.purposes", [p["id"] for p in register["purposes"]]
    )
    listed = agreements["agreements"]
    problems += _duplicates("agreements", "$.agreements", [a["id"] for a in listed])
    for index, agreement in enumerate(listed):
        problems += _agreement_problems(f"$.agreements[{index}]", agreement, known)
    problems += _contradictions(listed)
    return sorted(problems)


def _duplicates(document: str, path: str, ids: list[str]) -> list[DocumentProblem]:
    return [
        DocumentProblem(document, f"{path}[{index}].id", f"id {ident!r} is used more than once")
        for index, ident in enumerate(ids)
        if ids.index(ident) != index
    ]


def _agreement_problems(
    path: str, agreement: dict[str, Any], known: set[str]
) -> Iterator[DocumentProblem]:
    for index, purpose in enumerate(agreement["purposes"]):
        if purpose not in known:
            yield DocumentProblem(
                "agreements", f"{path}.purposes[{index}]", f"unknown purpose {purpose!r}"
            )
    for key in ("start", "end", "review_date"):
        try:
            date.fromisoformat(agreement[key])
        except ValueError:
            yield DocumentProblem("agreements", f"{path}.{key}", f"{agreement[key]!r} is no date")
            return
    if date.fromisoformat(agreement["end"]) < date.fromisoformat(agreement["start"]):
        yield DocumentProblem("agreements", f"{path}.end", "the agreement ends before it starts")
    special = any(dataset["special_category"] for dataset in agreement["datasets"])
    if special and agreement["lawful_basis"]["article_9"] is None:
        yield DocumentProblem(
            "agreements",
            f"{path}.lawful_basis.article_9",
            "health or care data needs an Art. 9 condition",
        )
    forms: dict[tuple[str, str], str] = {}
    for d_index, dataset in enumerate(agreement["datasets"]):
        for f_index, entry in enumerate(dataset["fields"]):
            key = (dataset["node"], entry["field"])
            if forms.setdefault(key, entry["output"]) != entry["output"]:
                yield DocumentProblem(
                    "agreements",
                    f"{path}.datasets[{d_index}].fields[{f_index}]",
                    f"field {entry['field']} at node {dataset['node']!r} is given two output "
                    f"forms ({forms[key]} and {entry['output']})",
                )


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["start"] <= b["end"] and b["start"] <= a["end"]


def _contradictions(listed: list[dict[str, Any]]) -> Iterator[DocumentProblem]:
    """Active agreements between the same parties, for a shared purpose and dataset, in
    overlapping periods, that give one field different output forms: the policy could not
    say which one binds, so neither may be published."""
    active = [(i, a) for i, a in enumerate(listed) if a["status"] == "active"]
    for n, (i, first) in enumerate(active):
        for j, second in active[n + 1 :]:
            if {p["agency"] for p in first["parties"]} != {p["agency"] for p in second["parties"]}:
                continue
            shared = sorted(set(first["purposes"]) & set(second["purposes"]))
            if not shared or not _overlap(first, second):
                continue
            for message in _field_conflicts(first, second):
                yield DocumentProblem(
                    "agreements",
                    f"$.agreements[{j}]",
                    f"contradicts active agreement {first['id']!r} (agreement "
                    f"$.agreements[{i}]) for purpose {shared[0]!r}: {message}",
                )


def _field_conflicts(first: dict[str, Any], second: dict[str, Any]) -> Iterator[str]:
    def forms(agreement: dict[str, Any]) -> dict[tuple[str, str], str]:
        return {
            (dataset["id"], entry["field"]): entry["output"]
            for dataset in agreement["datasets"]
            for entry in dataset["fields"]
        }

    theirs = forms(second)
    for key, output in sorted(forms(first).items()):
        if key in theirs and theirs[key] != output:
            yield (
                f"dataset {key[0]!r} field {key[1]} is {output} in one "
                f"and {theirs[key]} in the other"
            )
