"""How a node shows and takes back a person's pseudonym, under the request's permit.

Where the deciding agreement gives ``Person.pseudonym`` in pseudonymised form, the node
hands out the agreement's own pseudonym (``_pseudonyms.PseudonymCodec``) and accepts only
that form back in ``_entities``; where it gives it as identifiable (direct care), the
trust pseudonym itself. Everything else about a person is read through a DataLoader, one
query per batch, and each person returned is counted for the audit entry.
"""

from __future__ import annotations

import functools
import re

import strawberry

from datatrust.errors import AccessDenied, QueryError
from datatrust.federation.subgraphs._base import NodeContext, permit_of
from datatrust.federation.subgraphs._pseudonyms import PseudonymCodec

__all__ = ["pseudonym_in", "pseudonym_out"]

_TRUST_PSEUDONYM = re.compile(r"^[pl]-[0-9a-f]{32}$")


@functools.lru_cache(maxsize=8)
def _codec(key: bytes) -> PseudonymCodec:
    return PseudonymCodec(key)


def _codec_of(info: strawberry.Info) -> PseudonymCodec:
    context: NodeContext = info.context
    if context.keys is None:
        raise AccessDenied("access denied: this node has no pseudonym key to protect identities")
    return _codec(context.keys.pseudonym_key)


def pseudonym_out(info: strawberry.Info, pseudonym: str) -> str:
    """The form of ``pseudonym`` this request's recipient may see."""
    permit = permit_of(info)
    if permit.is_pseudonymised("Person", "pseudonym"):
        return _codec_of(info).encode(pseudonym, permit.agreement or "")
    return pseudonym


def pseudonym_in(info: strawberry.Info, given: str) -> str:
    """The trust pseudonym behind ``given``, or a QueryError if it is not in this request's form.

    In an ``_entities`` call the error is that entity's alone (path ``["_entities", i]``);
    as a ``patients(after:)`` cursor it refuses the field rather than restart the listing.
    """
    permit = permit_of(info)
    if permit.is_pseudonymised("Person", "pseudonym"):
        key = _codec_of(info).decode(given, permit.agreement or "")
        if key is None:
            raise QueryError(
                f"Person.pseudonym is not one agreement {permit.agreement} gives (r-...); "
                "use a pseudonym a node returned under that agreement"
            )
        return key
    if not _TRUST_PSEUDONYM.match(given):
        raise QueryError(
            "Person.pseudonym is not a trust pseudonym (p- or l- and 32 hex digits), the form "
            f"agreement {permit.agreement} gives"
        )
    return given
