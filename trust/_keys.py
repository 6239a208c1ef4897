"""Secret keys generated at first run and kept in the data directory, never in the repo."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["OVERLAP_KEY_FILE", "load_or_create_key", "overlap_key_path", "person_pseudonym"]

KEY_BYTES = 32
OVERLAP_KEY_FILE = "overlap.key"
"""The trust's overlap key, under ``<data_dir>/keys``: nodes derive each cross-agency
count's key from it. Only node processes load it; the gateway and the identity server never
do (whoever holds it and sees a count's values could match them to pseudonyms)."""


def overlap_key_path(data_dir: Path) -> Path:
    """Where a trust's overlap key lives: beside the pseudonym key, never in the repo."""
    return data_dir / "keys" / OVERLAP_KEY_FILE


def load_or_create_key(path: Path) -> bytes:
    """Read the key at ``path``, creating it (mode 0600) with fresh random bytes if absent.

    Creation uses O_EXCL so two processes starting together agree on one key.
    """
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(KEY_BYTES))
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def person_pseudonym(trust_key: bytes, nhs_number: str) -> str:
    """The trust pseudonym of a (validated) NHS number: ``p-`` + a keyed hash.

    Ingest stores people under it at every node, and the identity server puts it in a
    citizen's access token (``person`` claim), so a node can tell whose records are the
    signed-in citizen's without the NHS number ever leaving the identity server.
    """
    digest = hmac.new(trust_key, f"nhs-number:{nhs_number}".encode(), hashlib.sha256)
    return "p-" + digest.hexdigest()[:32]
