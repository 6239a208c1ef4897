"""The identity server's state in one SQLite file: clients, people, codes and issued tokens.

Codes and tokens are stored only as SHA-256 digests, so a copy of the file grants nothing.
Single-use things (authorization codes, refresh tokens, client-assertion ids) are consumed
with one conditional statement, so two racing requests cannot both succeed.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

__all__ = ["IdentityStore", "digest"]

metadata = sa.MetaData()

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("auth_method", sa.String(32), nullable=False),
    sa.Column("secret_digest", sa.String(64)),
    sa.Column("jwks", sa.JSON),
    sa.Column("grant_types", sa.JSON, nullable=False),
    sa.Column("redirect_uris", sa.JSON, nullable=False),
    sa.Column("agency", sa.String(64), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("purposes", sa.JSON, nullable=False),
    sa.Column("may_introspect", sa.Boolean, nullable=False, default=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("agency", sa.String(64), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("purposes", sa.JSON, nullable=False),
    sa.Column("nhs_number", sa.String(10)),
)

codes = sa.Table(
    "authorization_codes",
    metadata,
    sa.Column("code_digest", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=False),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("nonce", sa.String(200)),
    sa.Column("code_challenge", sa.String(128), nullable=False),
    sa.Column("code_challenge_method", sa.String(10), nullable=False),
    sa.Column("auth_time", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Integer, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("token_digest", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("jti", sa.String(64)),
    sa.Column("client_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(64)),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("family_id", sa.String(64), nullable=False, index=True),
    sa.Column("claims", sa.JSON),
    sa.Column("issued_at", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Integer, nullable=False),
    sa.Column("rotated", sa.Boolean, nullable=False, default=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

assertion_ids = sa.Table(
    "client_assertion_ids",
    metadata,
    sa.Column("client_id", sa.String(64), primary_key=True),
    sa.Column("jti", sa.String(200), primary_key=True),
    sa.Column("expires_at", sa.Integer, nullable=False),
)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    """WAL with synchronous=NORMAL: durable across process crashes, one fsync per checkpoint
    rather than per token (a power cut may lose the last tokens issued, which then fail
    introspection: safe)."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class IdentityStore:
    """Row-level operations the authorization server needs; rows come back as dicts."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(
            f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30}
        )
        sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)
        path.chmod(0o600)

    def add_client(self, **row: Any) -> None:
        with self.engine.begin() as db:
            db.execute(sa.delete(clients).where(clients.c.client_id == row["client_id"]))
            db.execute(sa.insert(clients).values(**row))

    def client(self, client_id: str) -> dict[str, Any] | None:
        return self._one(sa.select(clients).where(clients.c.client_id == client_id))

    def add_user(self, **row: Any) -> None:
        with self.engine.begin() as db:
            db.execute(sa.delete(users).where(users.c.username == row["username"]))
            db.execute(sa.insert(users).values(**row))

    def user(self, user_id: str) -> dict[str, Any] | None:
        return self._one(sa.select(users).where(users.c.user_id == user_id))

    def user_by_name(self, username: str) -> dict[str, Any] | None:
        return self._one(sa.select(users).where(users.c.username == username))

    def add_code(self, code: str, **row: Any) -> None:
        with self.engine.begin() as db:
            db.execute(sa.insert(codes).values(code_digest=digest(code), **row))

    def consume_code(self, code: str, client_id: str) -> dict[str, Any] | None:
        """The unexpired code issued to ``client_id``, deleted so it works only once."""
        condition = sa.and_(codes.c.code_digest == digest(code), codes.c.client_id == client_id)
        with self.engine.begin() as db:
            row = db.execute(sa.select(codes).where(condition)).mappings().first()
            if row is None or db.execute(sa.delete(codes).where(condition)).rowcount != 1:
                return None
        return dict(row) if row["expires_at"] > time.time() else None

    def nonce_used(self, client_id: str, nonce: str) -> bool:
        query = sa.select(codes.c.code_digest).where(
            codes.c.client_id == client_id, codes.c.nonce == nonce
        )
        return self._one(query) is not None

    def add_token(self, token: str, **row: Any) -> None:
        with self.engine.begin() as db:
            db.execute(sa.insert(tokens).values(token_digest=digest(token), **row))

    def token(self, token: str, kind: str | None = None) -> dict[str, Any] | None:
        query = sa.select(tokens).where(tokens.c.token_digest == digest(token))
        if kind is not None:
            query = query.where(tokens.c.kind == kind)
        return self._one(query)

    def rotate_refresh_token(self, token: str) -> bool:
        """Mark a refresh token used; False if it already was (a replay)."""
        statement = (
            sa.update(tokens)
            .where(tokens.c.token_digest == digest(token), tokens.c.rotated.is_(False))
            .values(rotated=True)
        )
        with self.engine.begin() as db:
            return db.execute(statement).rowcount == 1

    def revoke_token_digest(self, token_digest: str) -> None:
        statement = (
            sa.update(tokens).where(tokens.c.token_digest == token_digest).values(revoked=True)
        )
        with self.engine.begin() as db:
            db.execute(statement)

    def revoke_family(self, family_id: str) -> None:
        """Revoke every token descended from one sign-in (refresh-token reuse, or a logout)."""
        statement = sa.update(tokens).where(tokens.c.family_id == family_id).values(revoked=True)
        with self.engine.begin() as db:
            db.execute(statement)

    def use_assertion_id(self, client_id: str, jti: str, expires_at: int) -> bool:
        """Record a client assertion's ``jti``; False if it was seen before (a replay)."""
        with self.engine.begin() as db:
            db.execute(sa.delete(assertion_ids).where(assertion_ids.c.expires_at < time.time()))
            try:
                with db.begin_nested():
                    db.execute(
                        sa.insert(assertion_ids).values(
                            client_id=client_id, jti=jti, expires_at=expires_at
                        )
                    )
            except sa.exc.IntegrityError:
                return False
        return True

    def _one(self, query: sa.Select) -> dict[str, Any] | None:
        with self.engine.connect() as db:
            row = db.execute(query).mappings().first()
        return dict(row) if row else None
