"""The identity server's ES256 signing keys: generated at first use, rotated without a gap.

Each key is in one state:

==========  =================  ======  ============================================
state       published (JWKS)   signs   becomes
==========  =================  ======  ============================================
next        yes                no      current, at the next ``rotate()``
current     yes                yes     retired, at the next ``rotate()``
retired     yes                no      withdrawn once its tokens' max lifetime passed
==========  =================  ======  ============================================

So a validator that cached the JWKS already holds a key before any token is signed with it,
and a token signed just before a rotation keeps validating until it expires. Private keys
are PEM files of mode 0600 in the key directory; ``keyring.json`` records the states.

An operator rotates with ``datatrust identity rotate-keys`` while the server runs: every
change to the ring is made under a lock file by whichever process makes it, and a ring
notices when ``keyring.json`` was replaced by another process and reads it again before
it signs or publishes, so the running server signs with the new key at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

__all__ = ["KeyRing"]

ALGORITHM = "ES256"
_RING = "keyring.json"
_LOCK = "keyring.lock"


class KeyRing:
    """Signing keys under ``key_dir``; ``max_token_lifetime_seconds`` bounds a retired key."""

    def __init__(
        self,
        key_dir: Path,
        *,
        max_token_lifetime_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key_dir = key_dir
        self.max_token_lifetime_seconds = max_token_lifetime_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._keys: dict[str, ECKey] = {}
        self._loaded: tuple[int, int] | None = None  # keyring.json's (inode, mtime) when read
        with self._changing():
            if not self._fresh():
                self._create()

    @property
    def signing_key(self) -> ECKey:
        """The one key that signs now (its ``kid`` goes in every header)."""
        self._fresh()
        (entry,) = [e for e in self._entries if e["state"] == "current"]
        return self._keys[entry["kid"]]

    def jwks(self) -> dict[str, Any]:
        """The public JWKS: next, current and retired-but-not-withdrawn keys."""
        self._fresh()
        return {
            "keys": [
                {**self._keys[e["kid"]].as_dict(private=False), "use": "sig", "alg": ALGORITHM}
                for e in self._entries
            ]
        }

    def states(self) -> dict[str, str]:
        """Each published kid's state, for operators and tests."""
        self._fresh()
        return {e["kid"]: e["state"] for e in self._entries}

    def rotate(self) -> str:
        """Promote ``next`` to signing, retire the old key, publish a new ``next``.

        Returns the new signing kid. Retired keys whose tokens have all expired are withdrawn.
        """
        with self._changing():
            now = self._clock()
            for entry in self._entries:
                if entry["state"] == "current":
                    entry["state"], entry["retired_at"] = "retired", now
            for entry in self._entries:
                if entry["state"] == "next":
                    entry["state"] = "current"
            self._entries.append(self._new_key("next", now))
            self._withdraw_expired(now)
            self._save()
            (entry,) = [e for e in self._entries if e["state"] == "current"]
            return entry["kid"]

    def withdraw_expired(self, now: float | None = None) -> list[str]:
        """Withdraw retired keys older than the longest token lifetime; return their kids."""
        with self._changing():
            withdrawn = self._withdraw_expired(self._clock() if now is None else now)
            self._save()
            return withdrawn

    def _withdraw_expired(self, now: float) -> list[str]:
        horizon = self.max_token_lifetime_seconds + 60
        withdrawn = [
            e["kid"]
            for e in self._entries
            if e["state"] == "retired" and now - e["retired_at"] > horizon
        ]
        self._entries = [e for e in self._entries if e["kid"] not in withdrawn]
        for kid in withdrawn:
            self._keys.pop(kid, None)
            (self.key_dir / f"{kid}.pem").unlink(missing_ok=True)
        return withdrawn

    @contextlib.contextmanager
    def _changing(self):  # type: ignore[no-untyped-def]
        """This process's lock, then the lock file every process changes the ring under,
        then the ring as it is on disk now: a change is made to the latest ring."""
        with self._lock:
            self.key_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.key_dir, 0o700)
            fd = os.open(self.key_dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._fresh(locked=True)
                yield
            finally:
                os.close(fd)  # closing releases the lock

    def _fresh(self, *, locked: bool = False) -> bool:
        """Read keyring.json again if another process replaced it; False if there is none."""
        ring = self.key_dir / _RING
        try:
            stat = ring.stat()  # replaced atomically: a new inode at every write
        except FileNotFoundError:
            return False
        changed = (stat.st_ino, stat.st_mtime_ns)
        if changed == self._loaded:
            return True
        with contextlib.nullcontext() if locked else self._lock:
            entries = json.loads(ring.read_text(encoding="utf-8"))["keys"]
            keys = {}
            for entry in entries:
                kid = entry["kid"]
                key = self._keys.get(kid)
                if key is None:
                    key = ECKey.import_key((self.key_dir / f"{kid}.pem").read_bytes())
                    key.ensure_kid()
                keys[kid] = key
            self._entries, self._keys, self._loaded = entries, keys, changed
        return True

    def _create(self) -> None:
        now = self._clock()
        self._entries = [self._new_key("current", now), self._new_key("next", now)]
        self._save()

    def _new_key(self, state: str, now: float) -> dict[str, Any]:
        key = ECKey.generate_key("P-256", auto_kid=True)
        _write_private(self.key_dir / f"{key.kid}.pem", key.as_pem(private=True))
        self._keys[key.kid] = key
        return {"kid": key.kid, "state": state, "created_at": now, "retired_at": None}

    def _save(self) -> None:
        data = json.dumps({"keys": self._entries}, indent=2).encode()
        _write_private(self.key_dir / _RING, data)
        stat = (self.key_dir / _RING).stat()
        self._loaded = (stat.st_ino, stat.st_mtime_ns)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner only, replacing ``path`` atomically."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
