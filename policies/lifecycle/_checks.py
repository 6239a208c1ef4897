"""Everything that must hold before documents may be published, as located problems.

``validate_documents`` checks each document against its schema and for meaning (unknown
purposes, impossible dates, contradictory output forms). Here we add what only shows when
agreements are read together with the policy that will decide from them: two agreements
that overlap for the same requesters but set different disclosure or consent rules (the
Rego would silently pick one by id), and a Rego module that does not compile with these
documents (a node would deny everything). Each problem names the document, the agreement
and the JSON path, so a DPO can go straight to the line to fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import regopy

from datatrust.policies._engines import ENTRYPOINT, policy_modules
from datatrust.policies.documents import DocumentProblem, rego_data, validate_documents

__all__ = ["default_policy_dir", "rego_problems", "validate_policy"]

_RULES = (
    ("min_cell_size", "minimum cell size", lambda a: a["disclosure"]["min_cell_size"]),
    ("rounding_base", "rounding base", lambda a: a["disclosure"]["rounding_base"]),
    ("consent_required", "consent required", lambda a: a["consent_required"]),
    (
        "national_data_opt_out_applies",
        "national data opt-out applies",
        lambda a: a["national_data_opt_out_applies"],
    ),
)


def default_policy_dir() -> Path:
    """The shipped, vetted data-use Rego (``policies/datause``)."""
    return Path(str(resources.files("datatrust.policies").joinpath("datause")))


def validate_policy(
    register: dict[str, Any],
    agreements: dict[str, Any],
    *,
    policy_dir: Path | None = None,
    modules: Mapping[str, str] | None = None,
) -> list[DocumentProblem]:
    """Every problem with these documents and the Rego that will read them; empty = publishable.

    ``modules`` (file name -> source) replaces the policy directory's modules of the same
    name, so a changed Rego file can be checked before it is installed.
    """
    problems = validate_documents(register, agreements)
    if problems:
        return problems
    problems += _overlaps(agreements["agreements"])
    sources = policy_modules(policy_dir or default_policy_dir()) | dict(modules or {})
    problems += rego_problems(sources, rego_data(register, agreements))
    return sorted(problems)


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["start"] <= b["end"] and b["start"] <= a["end"]


def _reach(agreement: dict[str, Any]) -> set[tuple[str, str, str, str, str]]:
    """(agency, role, purpose, node, field): every request shape the agreement can cover."""
    return {
        (party["agency"], role, purpose, dataset["node"], entry["field"])
        for party in agreement["parties"]
        for role in agreement["recipient_roles"]
        for purpose in agreement["purposes"]
        for dataset in agreement["datasets"]
        for entry in dataset["fields"]
    }


def _overlaps(listed: list[dict[str, Any]]) -> Iterator[DocumentProblem]:
    """Active agreements, in overlapping periods, that can cover the same request but bind
    it with different disclosure or consent rules: which rules apply would depend on the
    agreements' ids, not on what the parties agreed."""
    active = [(i, a, _reach(a)) for i, a in enumerate(listed) if a["status"] == "active"]
    for n, (i, first, first_reach) in enumerate(active):
        for j, second, second_reach in active[n + 1 :]:
            shared = first_reach & second_reach
            if not shared or not _overlap(first, second):
                continue
            agency, role, purpose, node, field = min(shared)
            for key, words, value in _RULES:
                if value(first) != value(second):
                    yield DocumentProblem(
                        "agreements",
                        f"$.agreements[{j}]",
                        f"agreement {second['id']!r} overlaps active agreement {first['id']!r} "
                        f"($.agreements[{i}]) for {role} of agency {agency!r}, purpose "
                        f"{purpose!r}, field {field} at node {node!r}, but sets {words} "
                        f"{value(second)!r} where {first['id']!r} sets {value(first)!r} "
                        f"({key}); make their periods, purposes or fields disjoint, or agree "
                        "one rule",
                    )


_ERROR = re.compile(r"\(error (\d+):")
_OFFSET = re.compile(r"\|(\d+)\|(\d+)")


def _parse_errors(text: str) -> Iterator[tuple[str, int, str]]:
    """(file, offset, message) from regopy's error S-expression (length-prefixed strings)."""
    position = 0
    while (match := _ERROR.search(text, position)) is not None:
        start = match.end()
        name = text[start : start + int(match.group(1))]
        offset_match = _OFFSET.match(text, start + len(name))
        offset = int(offset_match.group(1)) if offset_match else 0
        message_at = text.find("(errormsg ", start)
        message = ""
        if message_at != -1:
            length, _, rest = text[message_at + len("(errormsg ") :].partition(":")
            message = rest[: int(length)] if length.isdigit() else rest.split(")")[0]
        yield name, offset, message
        position = start


def _line_column(source: str, offset: int) -> tuple[int, int]:
    before = source[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def rego_problems(modules: Mapping[str, str], documents: dict[str, Any]) -> list[DocumentProblem]:
    """Compile the Rego with the documents as regopy will at a node; name each error's file,
    line and column. (regopy also prints its errors to stdout; callers that own stdout
    should expect that.)"""
    if not modules:
        return [DocumentProblem("rego", "(policy directory)", "there is no Rego module")]
    try:
        builder = regopy.Interpreter()
        for name, source in modules.items():
            builder.add_module(name, source)
        builder.add_data_json(json.dumps({"documents": documents}, ensure_ascii=False))
        builder.build(None, [ENTRYPOINT])
    except Exception as error:  # a compile failure of any kind refuses the policy
        found = [
            DocumentProblem(
                f"rego {name}",
                "line {}, column {}".format(*_line_column(modules.get(name, ""), offset)),
                f"does not compile: {message or 'error'}",
            )
            for name, offset, message in _parse_errors(str(error))
        ]
        return found or [
            DocumentProblem("rego", "(policy)", f"does not compile: {type(error).__name__}")
        ]
    return []
