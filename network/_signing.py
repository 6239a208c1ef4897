"""Signing and verifying the trust directory with the trust operator's key (compact JWS, ES256).

A node trusts a directory only if the operator's key signed it, with ES256 and nothing else,
and only between its ``issued_at`` and ``expires_at``. The checks run cheapest first and each
names its problem, so an operator reading a node's log knows what to fix:

1. shape: a compact JWS of at most ``MAX_DIRECTORY_BYTES``;
2. header: ``alg`` is ES256 (so ``none`` and HS256 are refused by name), ``typ`` is
   ``DIRECTORY_TYPE``, no key reference (``jku``, ``x5u``, ``jwk``, ``x5c``) and no ``crit``;
3. signature, with the operator's public key (never a key the document names);
4. the document's own rules (``TrustDirectory.from_document``), then its validity period.

The operator's private key is ``<data_dir>/keys/operator.pem`` (0600); nodes need only the
public half, ``keys/operator.pub.pem``, which may also be given as a JWK JSON file.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from datatrust.network._directory import TrustDirectory
from datatrust.network._errors import DirectoryError
from datatrust.network._files import ensure_private_dir, write_file

__all__ = [
    "DIRECTORY_TYPE",
    "load_operator_public_key",
    "load_or_create_operator_key",
    "operator_public_key_path",
    "sign_directory",
    "verify_directory",
]

ALGORITHM = "ES256"
DIRECTORY_TYPE = "trust-directory+jws"
"""The JWS ``typ``: no other JWS the operator's key might sign can pass as a directory."""

MAX_DIRECTORY_BYTES = 1_048_576
CLOCK_LEEWAY = dt.timedelta(seconds=60)
"""How far a node's clock may lag the operator's before a fresh directory looks not yet valid."""

KEY_REFERENCE_HEADERS = ("jku", "x5u", "jwk", "x5c")
_COMPACT = re.compile(r"\A[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\Z")


def operator_public_key_path(data_dir: Path) -> Path:
    """Where ``init`` publishes the operator's public key for nodes to verify with."""
    return data_dir / "keys" / "operator.pub.pem"


def load_or_create_operator_key(data_dir: Path) -> ECKey:
    """The operator's signing key, created (P-256, mode 0600) with its public half if absent."""
    key_dir = ensure_private_dir(data_dir / "keys")
    private_path, public_path = key_dir / "operator.pem", operator_public_key_path(data_dir)
    if private_path.exists():
        try:
            key = ECKey.import_key(private_path.read_bytes())
        except (JoseError, ValueError, TypeError) as error:
            raise DirectoryError(f"cannot read the operator key {private_path}: {error}") from error
        if not key.is_private:
            raise DirectoryError(f"{private_path} holds a public key; the operator key is private")
    else:
        key = ECKey.generate_key("P-256", private=True)
        write_file(private_path, key.as_pem(private=True), private=True)
    key.ensure_kid()
    if not public_path.exists():
        write_file(public_path, key.as_pem(private=False), private=False)
    return key


def load_operator_public_key(path: Path) -> ECKey:
    """The operator's public key from a PEM or JWK JSON file (a private one is made public)."""
    try:
        data = path.read_bytes()
        raw: Any = json.loads(data) if data.lstrip().startswith(b"{") else data
        key = ECKey.import_key(raw)
        public = ECKey.import_key(key.as_dict(private=False))
    except (OSError, JoseError, ValueError, TypeError) as error:
        raise DirectoryError(
            f"cannot read the operator public key {path}: {error}; give the "
            "keys/operator.pub.pem written by datatrust init"
        ) from error
    public.ensure_kid()
    return public


def sign_directory(directory: TrustDirectory, key: ECKey) -> str:
    """The compact JWS of ``directory`` signed with the operator's private ``key``."""
    key.ensure_kid()
    payload = json.dumps(directory.to_document(), sort_keys=True, separators=(",", ":"))
    header = {"alg": ALGORITHM, "typ": DIRECTORY_TYPE, "kid": key.kid}
    return jws.serialize_compact(header, payload.encode(), key, algorithms=[ALGORITHM])


def verify_directory(
    value: str, operator_public_key: ECKey, *, now: dt.datetime | None = None
) -> TrustDirectory:
    """The directory ``value`` carries, if the operator signed it and it is valid at ``now``."""
    now = now or dt.datetime.now(dt.UTC)
    value = value.strip() if isinstance(value, str) else ""
    if len(value) > MAX_DIRECTORY_BYTES:
        raise DirectoryError(f"the signed directory is over {MAX_DIRECTORY_BYTES} bytes")
    if not _COMPACT.fullmatch(value):
        raise DirectoryError(
            "not a signed directory: expected a compact JWS (three base64url parts joined by "
            "dots), as written by datatrust directory sign"
        )
    header = _header(value.split(".", 1)[0])
    _check_header(header, operator_public_key)
    try:
        payload = jws.deserialize_compact(
            value, operator_public_key, algorithms=[ALGORITHM]
        ).payload
    except JoseError as error:
        raise DirectoryError(
            "the signature does not match the operator's key: the directory was changed after "
            f"it was signed, or signed with another key ({error.error})"
        ) from error
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise DirectoryError(f"the signed payload is not JSON: {error}") from error
    directory = TrustDirectory.from_document(document)
    if now < directory.issued_at - CLOCK_LEEWAY:
        raise DirectoryError(
            f"version {directory.version} is not valid yet: it is issued at "
            f"{_when(directory.issued_at)} and this clock says {_when(now)}; check the clocks"
        )
    if now >= directory.expires_at:
        raise DirectoryError(
            f"version {directory.version} expired at {_when(directory.expires_at)}: the "
            "operator must sign a fresh one (datatrust directory sign)"
        )
    return directory


def _header(part: str) -> dict[str, Any]:
    try:
        header = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        header = None
    if not isinstance(header, dict):
        raise DirectoryError("the signed directory's header is not a JSON object")
    return header


def _check_header(header: dict[str, Any], key: ECKey) -> None:
    algorithm = header.get("alg")
    if algorithm != ALGORITHM:
        raise DirectoryError(
            f"the directory is signed with alg {algorithm!r}; a trust directory is accepted "
            f"only signed with {ALGORITHM} by the operator's key"
        )
    for name in KEY_REFERENCE_HEADERS:
        if name in header:
            raise DirectoryError(
                f"the directory's header names a key ({name!r}); only the operator key the node "
                "was given is used, so such a header is refused"
            )
    if "crit" in header:
        raise DirectoryError("the directory's header has 'crit' extensions, which are refused")
    if header.get("typ") != DIRECTORY_TYPE:
        raise DirectoryError(
            f"the JWS has typ {header.get('typ')!r}, not {DIRECTORY_TYPE!r}: it is not a "
            "trust directory"
        )
    kid = header.get("kid")
    if kid is not None and kid != key.kid:
        raise DirectoryError(
            f"the directory is signed by key {kid!r}, not by the operator's key {key.kid!r}"
        )


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
