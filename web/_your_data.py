"""What "Your data" shows, from what the nodes counted: pure, no I/O.

Each node answers ``myRecords`` with the signed-in citizen's rows per kind in its own
store; this module names the kinds in plain words and keeps an agency that did not answer
on the page, saying so, rather than leaving it out (which would read as "holds nothing").
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KIND_WORDS", "AgencyRecords", "RecordCount", "agency_records"]

KIND_WORDS = {
    "person": ("personal details record", "personal details records"),
    "encounter": ("hospital visit", "hospital visits"),
    "care-episode": ("social care event", "social care events"),
}
"""Each kind a node counts, singular and plural, as a person would say it."""


@dataclass(frozen=True, slots=True)
class RecordCount:
    kind: str
    count: int
    words: str  # "3 hospital visits"


@dataclass(frozen=True, slots=True)
class AgencyRecords:
    node_id: str
    name: str
    counts: tuple[RecordCount, ...]
    problem: str | None = None

    @property
    def holds_records(self) -> bool:
        return any(c.count for c in self.counts)


def _words(kind: str, count: int) -> str:
    one, many = KIND_WORDS.get(kind, (kind.replace("-", " "), kind.replace("-", " ") + "s"))
    return f"{count} {one if count == 1 else many}"


def agency_records(node_id: str, name: str, answer: list[dict]) -> AgencyRecords:
    """One agency's counts from its ``myRecords`` answer, in the order of ``KIND_WORDS``."""
    order = list(KIND_WORDS)
    counts = sorted(
        (
            RecordCount(str(c["kind"]), int(c["count"]), _words(str(c["kind"]), int(c["count"])))
            for c in answer
            if int(c.get("count") or 0) > 0
        ),
        key=lambda c: order.index(c.kind) if c.kind in order else len(order),
    )
    return AgencyRecords(node_id, name, tuple(counts))
