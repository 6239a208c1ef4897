"""Pseudonymisation at the door: identifiers become keyed hashes before any row is written.

* NHS numbers become the trust pseudonym, an HMAC-SHA256 under the trust's pseudonym key,
  so the same person has the same pseudonym at every node (``Person @key(fields:
  "pseudonym")``) while the number itself never reaches a table.
* Local-authority person ids get the same treatment under a separate label.
* WiFi device MAC addresses (personal data, ICO WiFi analytics guidance 2016) are hashed
  under a key of their own day: once that day's key is destroyed the tokens can no longer
  be linked across days or reversed.

The node's key directory (``wifi_key_dir``, i.e. ``<data_dir>/keys/<node>``) also holds
``quarantine.key``, under which quarantine seals the originals of bad records.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from pathlib import Path

from datatrust.ingest._seal import Sealer
from datatrust.trust import load_or_create_key, person_pseudonym

__all__ = ["Pseudonymiser"]


def _keyed_hash(key: bytes, label: str, value: str) -> str:
    return hmac.new(key, f"{label}:{value}".encode(), hashlib.sha256).hexdigest()[:32]


class Pseudonymiser:
    """Keyed hashes of one node's identifiers; keys live under ``key_dir``."""

    def __init__(self, *, trust_key: bytes, wifi_key_dir: Path) -> None:
        self._trust_key = trust_key
        self._wifi_key_dir = wifi_key_dir
        self._wifi_keys: dict[str, bytes] = {}
        self._tokens: dict[tuple[str, str], str] = {}  # (day, mac) -> token, this run only
        self._sealer: Sealer | None = None

    @property
    def sealer(self) -> Sealer:
        """Seals quarantined originals under ``<key dir>/quarantine.key`` (made at first use)."""
        if self._sealer is None:
            self._sealer = Sealer(load_or_create_key(self._wifi_key_dir / "quarantine.key"))
        return self._sealer

    def person(self, nhs_number: str) -> str:
        """The trust pseudonym of a (validated) NHS number."""
        return person_pseudonym(self._trust_key, nhs_number)

    def local_person(self, local_id: str) -> str:
        return "l-" + _keyed_hash(self._trust_key, "la-person", local_id)

    def device(self, mac: str, seen_at: datetime) -> str:
        """A device token that links sightings within one UTC day only."""
        day = seen_at.date().isoformat()
        token = self._tokens.get((day, mac))
        if token is not None:
            return token
        key = self._wifi_keys.get(day)
        if key is None:
            key = load_or_create_key(self._wifi_key_dir / f"wifi-{day}.key")
            self._wifi_keys[day] = key
        if len(self._tokens) > 100_000:  # a busy day's devices; forget, do not grow
            self._tokens.clear()
        token = self._tokens[(day, mac)] = "d-" + _keyed_hash(key, "mac", mac)
        return token
