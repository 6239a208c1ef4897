"""The network package's own errors, kept in the datatrust tree.

::

    CallerError
    └── PeerNotListed        a TLS client whose certificate the trust directory does not list (403)
    SourceError
    ├── DirectoryError       the directory is unreadable, badly signed, expired or breaks a rule
    └── TlsMaterialError     a CA, certificate or key file is missing, unreadable or does not match

A bad directory is a source error, not the caller's: the operator's signed file (or whoever
tampered with it) is at fault, and a node answers 503 while it has no good directory.
"""

from __future__ import annotations

from typing import Any

from datatrust.errors import CallerError, SourceError

__all__ = ["DirectoryError", "PeerNotListed", "TlsMaterialError"]


class DirectoryError(SourceError):
    """The trust directory cannot be used; ``location`` (when given) names the JSON path."""

    code = "DIRECTORY_INVALID"
    status_hint = 503

    def __init__(self, message: str, *, location: str | None = None, **details: Any) -> None:
        super().__init__(f"{location}: {message}" if location else message, **details)
        self.reason = message
        self.location = location


class PeerNotListed(CallerError):
    """A mutual-TLS client whose certificate fingerprint the current directory does not list."""

    code = "PEER_NOT_LISTED"
    status_hint = 403


class TlsMaterialError(SourceError):
    """A CA, certificate or private key file of the trust is missing or unusable."""

    code = "TLS_MATERIAL_INVALID"
    status_hint = 500
