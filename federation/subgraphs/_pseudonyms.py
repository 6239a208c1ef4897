"""Pseudonyms as an agreement's recipients see them: one per agreement, not linkable beyond.

Inside the trust a person's pseudonym (``p-`` + a keyed hash of the NHS number) is the same
at every node, which is what lets ``Person @key(fields: "pseudonym")`` join records across
nodes. A recipient whose agreement gives ``Person.pseudonym`` in *pseudonymised* form must
not get that trust-wide value: they could link it to any other release. So the node
encrypts it deterministically (AES-SIV) under a key derived from the trust's pseudonym key
and the agreement id. Every node of the trust derives the same key, so the recipient can
still join one person's records across nodes within their agreement, and a node given
such a pseudonym back (in an ``_entities`` call) can decrypt it; with another agreement's
key, or tampered, it does not decrypt at all.
"""

from __future__ import annotations

import base64
import binascii
import functools

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["PseudonymCodec"]

_PREFIX = "r-"
_KINDS = {"p-": b"p", "l-": b"l"}


class PseudonymCodec:
    """Turns trust pseudonyms into an agreement's output pseudonyms and back."""

    def __init__(self, trust_key: bytes) -> None:
        self._trust_key = trust_key

    @functools.lru_cache(maxsize=64)  # noqa: B019 - a handful of agreements per node
    def _cipher(self, agreement: str) -> AESSIV:
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=f"datatrust output pseudonym:{agreement}".encode(),
        ).derive(self._trust_key)
        return AESSIV(key)

    def encode(self, pseudonym: str, agreement: str) -> str:
        """The output pseudonym of ``pseudonym`` under ``agreement``."""
        kind = _KINDS[pseudonym[:2]]
        plain = kind + bytes.fromhex(pseudonym[2:])
        sealed = self._cipher(agreement).encrypt(plain, None)
        return _PREFIX + base64.urlsafe_b64encode(sealed).decode().rstrip("=")

    def decode(self, output: str, agreement: str) -> str | None:
        """The trust pseudonym behind ``output``, or None if it is not one of this agreement's."""
        if not output.startswith(_PREFIX):
            return None
        text = output[len(_PREFIX) :]
        try:
            sealed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plain = self._cipher(agreement).decrypt(sealed, None)
        except (InvalidTag, ValueError, binascii.Error):
            return None
        prefix = {value: key for key, value in _KINDS.items()}.get(plain[:1])
        return None if prefix is None else prefix + plain[1:].hex()
