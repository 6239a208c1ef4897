"""A node's part in a cross-agency count: its cohort as per-query opaque values, per area.

The gateway asks every participating node for the same fresh query id. Each node derives
a key for that query alone from the trust's overlap key (which nodes hold and the gateway
never does), the query id, the purpose and the deciding agreement, and answers with
HMAC(query key, trust pseudonym) for each person in its cohort, grouped by the area of the
person's latest record, sorted so their order says nothing. The same person gives the
same value at every node within one query (so the gateway can intersect or unite them)
and an unrelated value in any other query (so nothing links answers across queries, or
back to a pseudonym). A query id is taken once: a node refuses an id it has seen, one
older than its validity window, and one issued before the node started (so a restart
does not reopen the window). Padding each area with random decoys hides the node's
per-area cohort sizes from the gateway when only an intersection will be counted.

Only the trust's gateway may ask (its mutual-TLS certificate, as the trust directory
names it): anyone else could intersect two nodes' values for one query id themselves and
read exact counts. A refusal after the policy permitted (wrong peer, a replayed or stale
query id) is audited as a deny, and every entry records the query id.

The policy decides the request like any aggregate read (``AreaTokens.code`` and
``AreaTokens.tokens``, aggregate-only): its row filters (consent, national data opt-out,
the agreement's dates) are applied in SQL exactly as for the node's own counts.
See docs/cross-agency-counts.md for the protocol and its threat model.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import strawberry
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, Engine, Select, select

from datatrust.errors import AccessDenied, DatatrustError, QueryError
from datatrust.federation.subgraphs._base import (
    NodeContext,
    NodeKeys,
    permit_of,
    require_gateway_peer,
)
from datatrust.federation.subgraphs._filters import restrict
from datatrust.federation.subgraphs._offloop import Abandonable, run_off_loop
from datatrust.policies import Permit
from datatrust.store import CareEpisode, Encounter

__all__ = [
    "QUERY_ID_WINDOW_SECONDS",
    "AreaTokens",
    "OverlapNodeKeys",
    "OverlapTokens",
    "QueryIdRegister",
    "cohort_tokens",
    "overlap_field",
    "padded_size",
    "query_key",
    "token_of",
]

QUERY_ID_WINDOW_SECONDS = 300
"""How long a query id may be used after it was issued (and is remembered as used)."""
CLOCK_SKEW_SECONDS = 30
"""How far ahead of this node's clock a query id's issue time may be."""
MAX_REMEMBERED_IDS = 100_000
"""Query ids kept at once; past it new ids are refused until old ones expire (fail closed)."""
TOKEN_BYTES = 16
"""128-bit values: no two people of a trust collide, and nothing is left to brute-force."""
MIN_PADDED = 32
"""Each padded list holds at least this many values, real and decoy together."""

_QUERY_ID = re.compile(r"^q1\.(\d{13})\.[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class OverlapNodeKeys(NodeKeys):
    """A node's keys plus the trust's overlap key and the query ids it has answered."""

    overlap_key: bytes = field(repr=False, kw_only=True)
    query_ids: QueryIdRegister = field(repr=False, kw_only=True)


class QueryIdRegister:
    """The query ids a node has answered, each remembered for its validity window.

    Refusing a second use of an id is what keeps a curious gateway from getting two
    answers under one key (and so linking them); refusing ids issued before the register
    existed keeps a restart from forgetting the ids it had answered.
    """

    def __init__(self, *, clock=time.time) -> None:  # type: ignore[no-untyped-def]
        self._clock = clock
        self._started_ms = int(clock() * 1000)
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, query_id: str) -> None:
        """Accept ``query_id`` once, or raise AccessDenied / QueryError saying why not."""
        match = _QUERY_ID.match(query_id)
        if match is None:
            raise QueryError(
                "queryId must be 'q1.<issue time in ms>.<43 random base64url characters>', "
                "as the gateway issues it"
            )
        issued_ms = int(match.group(1))
        now_ms = int(self._clock() * 1000)
        if issued_ms > now_ms + CLOCK_SKEW_SECONDS * 1000:
            raise AccessDenied("access denied: the queryId is issued in the future; check clocks")
        if issued_ms < now_ms - QUERY_ID_WINDOW_SECONDS * 1000:
            raise AccessDenied(
                f"access denied: the queryId is older than {QUERY_ID_WINDOW_SECONDS} s; "
                "ask with a fresh one"
            )
        if issued_ms < self._started_ms:
            raise AccessDenied(
                "access denied: the queryId was issued before this node started; "
                "ask with a fresh one"
            )
        with self._lock:
            horizon = now_ms - QUERY_ID_WINDOW_SECONDS * 1000
            for old in [key for key, issued in self._seen.items() if issued < horizon]:
                del self._seen[old]
            if query_id in self._seen:
                raise AccessDenied(
                    "access denied: this queryId has been answered already; a query id is "
                    "used once, so answers under one key cannot be linked"
                )
            if len(self._seen) >= MAX_REMEMBERED_IDS:
                raise AccessDenied(
                    "access denied: too many cross-agency counts in the last "
                    f"{QUERY_ID_WINDOW_SECONDS} s; try again shortly"
                )
            self._seen[query_id] = issued_ms


# --- the pure core: keys, values, padding -----------------------------------------------


def query_key(overlap_key: bytes, query_id: str, purpose: str, agreement: str) -> bytes:
    """The key of one query: every node derives the same one, nobody else can."""
    info = b"\x00".join(
        (
            b"datatrust cross-agency count v1",
            query_id.encode(),
            purpose.encode(),
            agreement.encode(),
        )
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(overlap_key)


def token_of(key: bytes, pseudonym: str) -> str:
    """The opaque value of ``pseudonym`` under a query key (base64url, 22 characters)."""
    digest = hmac.new(key, pseudonym.encode(), hashlib.sha256).digest()[:TOKEN_BYTES]
    return _b64(digest)


class _Keyed:
    """``token_of`` for many pseudonyms under one key, at a fraction of its cost.

    HMAC-SHA256 (RFC 2104) is SHA-256 over the key padded and XORed with 0x5c, then the
    inner hash: SHA-256 over the key XORed with 0x36, then the message. The two keyed
    states are hashed once per query and copied per person, which halves the work of
    ``hmac.new`` per value; the values are the same (a test compares them).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        self._inner = hashlib.sha256(block.translate(_XOR_36))
        self._outer = hashlib.sha256(block.translate(_XOR_5C))

    def tokens(self, pseudonyms: list[str], abandonable: Abandonable | None = None) -> list[str]:
        inner_copy, outer_copy = self._inner.copy, self._outer.copy
        encode = base64.urlsafe_b64encode
        out: list[str] = []
        for start in range(0, len(pseudonyms), _CHUNK):
            if abandonable is not None:
                abandonable.check()
            for pseudonym in pseudonyms[start : start + _CHUNK]:
                inner = inner_copy()
                inner.update(pseudonym.encode())
                outer = outer_copy()
                outer.update(inner.digest())
                out.append(encode(outer.digest()[:TOKEN_BYTES])[:22].decode("ascii"))
        return out


_XOR_36 = bytes(b ^ 0x36 for b in range(256))
_XOR_5C = bytes(b ^ 0x5C for b in range(256))
_CHUNK = 8192
"""Values hashed between two checks that the request is still wanted."""


def key_check(key: bytes) -> str:
    """A value that shows whether two nodes derived the same query key, and nothing else."""
    return token_of(key, "datatrust key check")


def padded_size(size: int) -> int:
    """How many values a padded list of ``size`` real ones holds: the next power of two.

    The gateway then learns the power of two, not the size; a bucket stays the same for
    any size inside it, so repeated queries do not average it away.
    """
    return max(MIN_PADDED, 1 << max(size - 1, 0).bit_length())


def _decoys(count: int) -> list[str]:
    """``count`` random values, indistinguishable from real ones (one draw for all)."""
    raw = secrets.token_bytes(TOKEN_BYTES * count)
    encode = base64.urlsafe_b64encode
    return [
        encode(raw[at : at + TOKEN_BYTES])[:22].decode("ascii")
        for at in range(0, len(raw), TOKEN_BYTES)
    ]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


# --- the store read ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cohort:
    table: type
    subject: object
    when: object
    when_is_date: bool


_COHORTS = {
    "health": _Cohort(Encounter, Encounter.pseudonym, Encounter.started_at, False),
    "social-care": _Cohort(CareEpisode, CareEpisode.pseudonym, CareEpisode.started_on, True),
}


def _areas_of(
    engine: Engine,
    permit: Permit,
    node_id: str,
    since: date | None,
    until: date | None,
    *,
    by_area: bool = True,
    abandonable: Abandonable | None = None,
) -> tuple[dict[str, str | None], int]:
    """Each person of the cohort with the area of their latest record (None if no record
    names one), and the number of records read; the permit's row filters apply in SQL.

    Without ``by_area`` only the people are wanted (every area is None): the records are
    read unordered and without their area, which is all one list needs.
    """
    cohort = _COHORTS.get(node_id)
    if cohort is None:
        raise AccessDenied(f"access denied: node '{node_id}' keeps no people for a cohort")
    table = cohort.table
    if by_area:
        query = (
            select(cohort.subject, table.lsoa_code)  # type: ignore[attr-defined]
            .where(cohort.subject.is_not(None))  # type: ignore[attr-defined]
            .order_by(cohort.when, table.id)  # type: ignore[attr-defined]
        )
    else:
        query = select(cohort.subject).where(cohort.subject.is_not(None))  # type: ignore[attr-defined]
    query = restrict(
        query,
        permit,
        subject=cohort.subject,
        when=cohort.when,
        when_is_date=cohort.when_is_date,
        since=since,
        until=until,
    )
    abandonable = abandonable or Abandonable()
    with abandonable.connect(engine) as connection:
        records = _plain_rows(connection, query)
    if not by_area:
        return dict.fromkeys(pseudonym for (pseudonym,) in records), len(records)
    areas: dict[str, str | None] = {}
    for pseudonym, area in records:
        if area is not None or pseudonym not in areas:
            areas[pseudonym] = area
    return areas, len(records)


def _plain_rows(connection: Connection, query: Select) -> list[tuple[Any, ...]]:
    """The rows of ``query`` as the database driver gives them.

    The columns read here are plain text (pseudonyms, area codes), which SQLAlchemy would
    hand over unchanged; building its Row objects for tens of thousands of them cost more
    than running the query, so the driver's own cursor is read instead.
    """
    result = connection.execute(query)
    try:
        return result.cursor.fetchall()  # type: ignore[attr-defined]
    finally:
        result.close()


def _coverage(engine: Engine, node_id: str, abandonable: Abandonable | None = None) -> list[str]:
    """Every area this node has any record in: the padded answer lists them all, so the
    gateway cannot tell which areas have anyone in this cohort."""
    table = _COHORTS[node_id].table
    query = select(table.lsoa_code).where(table.lsoa_code.is_not(None)).distinct()  # type: ignore[attr-defined]
    with (abandonable or Abandonable()).connect(engine) as connection:
        return [code for (code,) in connection.execute(query)]


def cohort_tokens(
    areas: dict[str, str | None],
    key: bytes,
    *,
    by_area: bool,
    padded: bool,
    coverage=(),
    abandonable: Abandonable | None = None,
) -> dict[str | None, list[str]]:
    """The answer's lists: per area (people without one are left out), or one list under
    None; each padded with decoys if asked, and sorted."""
    grouped: dict[str | None, list[str]] = (
        {code: [] for code in coverage} if by_area else {None: list(areas)}
    )
    if by_area:
        for pseudonym, area in areas.items():
            if area is not None:
                grouped.setdefault(area, []).append(pseudonym)
    keyed = _Keyed(key)
    lists: dict[str | None, list[str]] = {}
    for code, people in grouped.items():
        values = keyed.tokens(people, abandonable)
        if padded:
            values.extend(_decoys(padded_size(len(values)) - len(values)))
        values.sort()
        lists[code] = values
    return lists


# --- the GraphQL surface ----------------------------------------------------------------


def _values_out(values: list[str]) -> list[str]:
    return values


def _values_in(value: object) -> list[str]:
    raise QueryError("OverlapValues are answered by nodes, never sent to one")


OverlapValues = strawberry.federation.scalar(
    list[str],
    name="OverlapValues",
    description=(
        "Opaque values, each 128 bits in base64url (22 characters), sorted: a JSON array "
        "of strings, as [String!]! would be. One scalar rather than a list, so a list of "
        "tens of thousands of values is serialised once instead of value by value."
    ),
    serialize=_values_out,
    parse_value=_values_in,
    inaccessible=True,
)


@strawberry.federation.type(
    shareable=True,
    inaccessible=True,
    description="One area's opaque values (people, and decoys if padded); no area: all people.",
)
class AreaTokens:
    code: strawberry.ID | None
    tokens: OverlapValues  # type: ignore[valid-type]


@strawberry.federation.type(
    shareable=True,
    inaccessible=True,
    description="A node's answer to a cross-agency count: its cohort as per-query values.",
)
class OverlapTokens:
    key_check: str = strawberry.field(
        description="Equal at every node exactly when all derived the same query key."
    )
    min_cell_size: int = strawberry.field(description="The deciding agreement's minimum cell.")
    round_to: int = strawberry.field(description="The deciding agreement's rounding base.")
    areas: list[AreaTokens]


async def _overlap_tokens(
    info: strawberry.Info,
    query_id: str,
    since: date | None = None,
    until: date | None = None,
    by_area: bool = True,
    padded: bool = False,
) -> OverlapTokens:
    context: NodeContext = info.context
    require_gateway_peer(info, "overlapTokens")
    permit = permit_of(info)
    try:
        keys = _checked(context, query_id, since, until)
    except DatatrustError as error:  # nothing answered: the audit entry is a deny
        raise context.refuse(error) from None
    key = query_key(keys.overlap_key, query_id, permit.purpose, permit.agreement or "")

    read: list[tuple[int, int]] = []

    def answer(abandonable: Abandonable) -> dict[str | None, list[str]]:
        """The store read and the hashing, in a worker thread: tens of thousands of
        values would otherwise hold the node's event loop, and a request whose caller
        has gone stops here (see _offloop)."""
        engine, node = context.engine, context.node_id
        areas, rows = _areas_of(
            engine, permit, node, since, until, by_area=by_area, abandonable=abandonable
        )
        read.append((rows, len(areas)))
        coverage = _coverage(engine, node, abandonable) if padded and by_area else ()
        return cohort_tokens(
            areas, key, by_area=by_area, padded=padded, coverage=coverage, abandonable=abandonable
        )

    try:
        lists = await run_off_loop(answer)
    finally:  # the worker has stopped either way: what it read is audited, even if cancelled
        for rows, people in read:
            context.disclosed.aggregate(rows, people)
    return OverlapTokens(
        key_check=key_check(key),
        min_cell_size=permit.obligations.min_cell,
        round_to=permit.obligations.round_to,
        areas=[
            AreaTokens(code=strawberry.ID(code) if code else None, tokens=values)
            for code, values in sorted(lists.items(), key=lambda item: item[0] or "")
        ],
    )


def _checked(
    context: NodeContext, query_id: str, since: date | None, until: date | None
) -> OverlapNodeKeys:
    """This node's overlap keys once the request may be answered: the query id is taken
    (once) and noted for the audit entry, which so links to the gateway's call."""
    keys = context.keys
    if not isinstance(keys, OverlapNodeKeys):
        raise AccessDenied(
            "access denied: this node holds no overlap key, so it takes no part in "
            "cross-agency counts; run datatrust init"
        )
    context.notes.append(
        f"queryId {query_id}" if _QUERY_ID.match(query_id) else "queryId malformed"
    )
    if since is not None and until is not None and since > until:
        raise QueryError(f"since ({since}) is after until ({until}); give a period forwards")
    keys.query_ids.take(query_id)
    return keys


def overlap_field():  # type: ignore[no-untyped-def]
    """``Query.overlapTokens``, for a node's Query type: the node then takes part in counts.

    ``@inaccessible`` keeps it out of every composed API schema (ours, Apollo's, Hive's),
    and the resolver answers only the trust's gateway as the mutual-TLS peer: a direct
    call with any other directory certificate (a tool's, a node's) is refused and audited,
    so exact per-area values never reach anyone but the gateway's disclosure control.
    """
    return strawberry.federation.field(
        resolver=_overlap_tokens,
        shareable=True,
        inaccessible=True,
        description=(
            "This node's cohort for a cross-agency count, as values keyed for one query id; "
            "for the gateway only (see docs/cross-agency-counts.md)."
        ),
    )
