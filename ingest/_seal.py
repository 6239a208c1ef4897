"""Sealing quarantined records: the unredacted original, encrypted under a node key.

Quarantine shows people a redacted copy of each bad record (no MAC address, no NHS
number), but a replay after a codec or mapping fix needs the original. So the original is
kept beside it, encrypted with AES-256-GCM under the node's quarantine key
(``<data_dir>/keys/<node>/quarantine.key``, outside the database): reading the table gives
nobody an identifier, and destroying the key makes every sealed copy unreadable.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from datatrust.errors import RecordError

__all__ = ["Sealer", "record_from_payload", "record_payload"]

_CONTEXT = b"datatrust quarantine v1"


class Sealer:
    """Encrypts and decrypts quarantine payloads under one 32-byte key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, payload: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        return base64.b64encode(nonce + self._aead.encrypt(nonce, data, _CONTEXT)).decode()

    def unseal(self, token: str) -> dict[str, Any]:
        blob = base64.b64decode(token)
        return json.loads(self._aead.decrypt(blob[:12], blob[12:], _CONTEXT))


def record_payload(record: Any) -> dict[str, Any]:
    """A canonical record as JSON-ready data (datetimes and dates tagged)."""
    return {
        "record": type(record).__name__,
        "fields": {f.name: _encode(getattr(record, f.name)) for f in fields(record)},
    }


def record_from_payload(payload: dict[str, Any], location: str) -> object:
    """The record again, rebuilt (and so re-validated) by its adapter class."""
    from datatrust import adapters

    factory = getattr(adapters, payload["record"], None)
    if factory is None:
        return RecordError(f"no record type {payload['record']!r} exists", location=location)
    values = {name: _decode(value) for name, value in payload["fields"].items()}
    try:
        return factory(**values)
    except ValueError as error:
        return RecordError(str(error), location=location)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        if "$datetime" in value:
            return datetime.fromisoformat(value["$datetime"])
        if "$date" in value:
            return date.fromisoformat(value["$date"])
    return value
