"""The identity server's settings: one frozen object, checked when built."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from datatrust.errors import SettingsError

__all__ = ["IdentitySettings"]


@dataclass(frozen=True)
class IdentitySettings:
    """Where the identity server keeps its state, who it is, and for whom its tokens are.

    ``data_dir`` holds ``keys/`` (the signing keys) and, beside it, ``identity.db`` (clients,
    people, codes, refresh tokens, revocations). ``audiences`` lists the gateway and every node,
    so that one token is accepted at the gateway and directly at each node.
    """

    issuer: str
    audiences: tuple[str, ...]
    data_dir: Path
    access_token_lifetime_seconds: int = 600
    refresh_token_lifetime_seconds: int = 8 * 3600
    authorization_code_lifetime_seconds: int = 60
    id_token_lifetime_seconds: int = 600
    portal_redirect_uris: tuple[str, ...] = ()
    person_key_file: Path | None = None
    """The trust's pseudonym key: with it, a citizen's access token names them by their
    trust pseudonym (``person`` claim), so nodes can let them act on their own consents."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"identity issuer {self.issuer!r} is not an http(s) URL")
        if parts.query or parts.fragment or self.issuer.endswith("/"):
            raise SettingsError(
                f"identity issuer {self.issuer!r} must have no query, fragment or trailing '/'"
            )
        if not self.audiences:
            raise SettingsError("identity audiences is empty: list the gateway and the nodes")
        for name in (
            "access_token_lifetime_seconds",
            "refresh_token_lifetime_seconds",
            "authorization_code_lifetime_seconds",
            "id_token_lifetime_seconds",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"identity {name} must be positive")

    @property
    def key_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "identity.db"

    def endpoint(self, path: str) -> str:
        return f"{self.issuer}{path}"
