"""The pure bookkeeping of ``bench/load.py``: what each request met, and whether it is audited.

Kept apart from the load driver (no processes, no network) so the rules that decide the
bench's verdicts (which requests fall in the node's outage, what kind of error a response
is, which ledger entries a request must have left) can be read and tested on their own.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "AuditTally",
    "Outcome",
    "Window",
    "audit_request",
    "error_kinds",
    "read_errors",
]


@dataclass(frozen=True)
class Window:
    """The node's outage, in seconds from the run's start: from its kill until it is ready."""

    start: float
    end: float

    def overlaps(self, started: float, ended: float) -> bool:
        """Whether a request in flight from ``started`` to ``ended`` met the outage at all."""
        return started < self.end and ended > self.start

    def seconds_within(self, length: float) -> float:
        """How much of a run ``length`` seconds long the outage covers."""
        return max(0.0, min(self.end, length) - max(self.start, 0.0))


@dataclass(frozen=True)
class Outcome:
    """One request as the analyst saw it."""

    query: str
    request_id: str
    started: float  # seconds from the run's start
    ended: float
    status: int | None = None  # None: no HTTP response (client timeout, transport error)
    failure: str | None = None  # "client timeout", or the transport error's type
    codes: frozenset[str] = frozenset()  # GraphQL error codes in the response
    failed_nodes: frozenset[str] = frozenset()  # nodes the response's errors name

    @property
    def seconds(self) -> float:
        return self.ended - self.started

    @property
    def is_ok(self) -> bool:
        return self.status == 200 and not self.codes and self.failure is None


def read_errors(body: bytes) -> tuple[frozenset[str], frozenset[str]]:
    """The GraphQL error codes in a response body, and the nodes its errors name.

    A node's failure in a federated answer names it in ``extensions.node``; a cross-agency
    count that could not be made names every node that failed in ``extensions.nodes``. A
    body that is not a GraphQL response counts as the code ``NOT_GRAPHQL``.
    """
    try:
        answer = json.loads(body)
    except ValueError:
        return frozenset({"NOT_GRAPHQL"}), frozenset()
    if not isinstance(answer, dict):
        return frozenset({"NOT_GRAPHQL"}), frozenset()
    codes, nodes = set(), set()
    for error in answer.get("errors") or ():
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if not isinstance(extensions, dict):
            codes.add("NO_CODE")
            continue
        codes.add(str(extensions.get("code") or "NO_CODE"))
        if isinstance(extensions.get("node"), str):
            nodes.add(extensions["node"])
        if isinstance(extensions.get("nodes"), dict):
            nodes.update(str(name) for name in extensions["nodes"])
    return frozenset(codes), frozenset(nodes)


def error_kinds(outcome: Outcome) -> list[tuple[str, str]]:
    """Each kind of error one request met, once: (kind, what), e.g. ("HTTP status", "503")."""
    if outcome.failure == "client timeout":
        return [("client timeout", "-")]
    if outcome.failure is not None:
        return [("transport error", outcome.failure)]
    kinds = []
    if outcome.status != 200:
        kinds.append(("HTTP status", str(outcome.status)))
    kinds += [("GraphQL error code", code) for code in sorted(outcome.codes)]
    kinds += [("node named in a partial result", node) for node in sorted(outcome.failed_nodes)]
    return kinds


@dataclass
class AuditTally:
    """Per ledger, what the run's requests left in it, by verdict (see :func:`audit_request`)."""

    verdicts: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, part: str, verdict: str) -> None:
        self.verdicts.setdefault(part, Counter())[verdict] += 1

    def count(self, verdict: str) -> int:
        return sum(counter[verdict] for counter in self.verdicts.values())


UNAUDITED = "unaudited"
"""The verdict the target forbids: data (or a gateway answer) with no entry for it."""


def audit_request(
    outcome: Outcome,
    steps: Sequence[Iterable[str]],
    entries: Mapping[str, int],
    tally: AuditTally,
) -> None:
    """Add one request's verdict for the gateway's ledger and each node's to ``tally``.

    ``steps`` are the node fetches of the query's plan, step by step (a node fetched twice
    appears twice); ``entries`` the ledger entries carrying the request's id, by part.

    * gateway: every request it answered has exactly one entry ("audited"); none is
      ``UNAUDITED``, more is "extra entries". A request with no response may have one or
      not ("client gave up").
    * a node, when the gateway answered 200: a node whose fetches all ran (every earlier
      step's nodes answered) and that no error names gave data, so it needs one entry
      per fetch ("audited"; fewer is ``UNAUDITED``). A node an error names has none ("not
      reached", as when it is down) or its entries ("audited, answer lost"). A node left
      out because an earlier step's node failed has none ("skipped").
    * a node, when the gateway refused or failed (no data) or there was no response: its
      entries, if any, are audited refusals or work the client never saw ("no data
      answered"); nothing left the trust unaudited.
    """
    gateway = entries.get("gateway", 0)
    if outcome.status is None:
        tally.add("gateway", "client gave up")
    else:
        tally.add("gateway", "audited" if gateway == 1 else UNAUDITED if not gateway else "extra")
    planned = Counter(node for step in steps for node in step)
    if outcome.status != 200:
        for node in planned:
            tally.add(node, "no data answered")
        return
    reached = True  # every earlier step's nodes answered, so this step's fetches ran
    for step in _distinct_steps(steps):
        for node in step:
            found = entries.get(node, 0)
            if not reached:
                tally.add(node, "skipped" if not found else "extra")
            elif node in outcome.failed_nodes:
                tally.add(node, "not reached" if not found else "audited, answer lost")
            elif found < planned[node]:
                tally.add(node, UNAUDITED)
            else:
                tally.add(node, "audited" if found == planned[node] else "extra")
        reached = reached and not any(node in outcome.failed_nodes for node in step)


def _distinct_steps(steps: Sequence[Iterable[str]]) -> list[list[str]]:
    """The steps with each node only at its first step (its verdict covers all its fetches)."""
    seen: set[str] = set()
    result = []
    for step in steps:
        fresh = [node for node in dict.fromkeys(step) if node not in seen]
        seen.update(fresh)
        result.append(fresh)
    return result
