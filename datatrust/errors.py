"""The one exception tree of datatrust, and the one error shape each surface returns.

::

    DatatrustError
    ├── CallerError                 the caller did something wrong (4xx)
    │   ├── SettingsError           a setting is unknown, mistyped or missing
    │   ├── PurposeError            no purpose, or one the register does not know
    │   │   ├── PurposeMissing
    │   │   └── PurposeUnknown
    │   ├── QueryError              a GraphQL document that does not parse or validate
    │   ├── AccessDenied            policy refused this purpose for what was asked (403)
    │   ├── ConsentError            a consent record or opt-out list breaks a rule
    │   │   └── ConsentStateConflict  a consent change that does not fit its state (409)
    │   ├── AuthenticationFailed    no access token, or one that cannot be trusted (401)
    │   ├── PermissionDenied        a trusted token that does not allow this request (403)
    │   └── RateLimited             more requests than a client's or person's share (429)
    └── SourceError                 a source or peer did something wrong (5xx)
        ├── RecordError             one input record cannot be read (it is quarantined)
        ├── PeerError               another node did not answer, or answered nonsense
        ├── StoreError              the node's database is unreachable or not migrated
        └── PortInUse               a port the trust needs is taken by something else

Every error carries a stable ``code`` (GraphQL ``extensions.code``, and the name of its
page in ``docs/errors.md``) and an HTTP ``status_hint``. Caller errors are kept apart from
source errors, as h11 keeps LocalProtocolError apart from RemoteProtocolError, so a
server can answer 4xx or 5xx without guessing.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "AccessDenied",
    "AuthenticationFailed",
    "CallerError",
    "ConsentError",
    "ConsentStateConflict",
    "DatatrustError",
    "PeerError",
    "PermissionDenied",
    "PortInUse",
    "PurposeError",
    "PurposeMissing",
    "PurposeUnknown",
    "QueryError",
    "RateLimited",
    "RecordError",
    "SettingsError",
    "SourceError",
    "StoreError",
    "error_headers",
    "graphql_error",
]


class DatatrustError(Exception):
    """Root of every error datatrust raises on purpose."""

    code = "INTERNAL"
    status_hint = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class CallerError(DatatrustError):
    code = "BAD_REQUEST"
    status_hint = 400


class SettingsError(CallerError):
    code = "BAD_SETTING"


class PurposeError(CallerError):
    code = "PURPOSE_INVALID"


class PurposeMissing(PurposeError):
    code = "PURPOSE_MISSING"


class PurposeUnknown(PurposeError):
    code = "PURPOSE_UNKNOWN"


class QueryError(CallerError):
    code = "GRAPHQL_VALIDATION_FAILED"


class AccessDenied(CallerError):
    code = "ACCESS_DENIED"
    status_hint = 403


class SourceError(DatatrustError):
    code = "SOURCE_ERROR"
    status_hint = 502


class RecordError(SourceError):
    """One record of a source cannot be read; ``location`` says where it is."""

    code = "BAD_RECORD"
    status_hint = 422

    def __init__(self, message: str, *, location: str, **details: Any) -> None:
        super().__init__(f"{location}: {message}", location=location, **details)
        self.reason = message
        self.location = location


class PeerError(SourceError):
    code = "NODE_UNAVAILABLE"
    status_hint = 502


class StoreError(SourceError):
    code = "STORE_UNAVAILABLE"
    status_hint = 503


class PortInUse(SourceError):
    code = "PORT_IN_USE"
    status_hint = 500


class RateLimited(CallerError):
    """A client or person sent more requests than its share; try again after a pause."""

    code = "RATE_LIMITED"
    status_hint = 429


def error_headers(error: DatatrustError) -> dict[str, str]:
    """HTTP headers an error's response carries: Retry-After for 429, WWW-Authenticate for 401."""
    headers: dict[str, str] = {}
    retry_after = error.details.get("retry_after_seconds")
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(float(retry_after))))
    if error.status_hint == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="datatrust"'
    return headers


def graphql_error(error: DatatrustError, *, path: list[str | int] | None = None) -> dict[str, Any]:
    """The one GraphQL error object every surface returns for a datatrust error.

    The message is always the error's own words (a denial's reason is never hidden) and
    ``extensions`` carries the stable code plus any details that name where it happened.
    """
    body: dict[str, Any] = {
        "message": error.message,
        "extensions": {"code": error.code, **_jsonable(error.details)},
    }
    if path is not None:
        body["path"] = path
    return body


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, str | int | float | bool | list | dict) else str(value)
        for key, value in details.items()
        if value is not None
    }


class AuthenticationFailed(CallerError):
    """No access token, or one that cannot be trusted: the caller must (re)authenticate."""

    code = "UNAUTHENTICATED"
    status_hint = 401


class PermissionDenied(CallerError):
    """A trusted access token that does not allow this request (such as its purpose)."""

    code = "FORBIDDEN"
    status_hint = 403


class ConsentError(CallerError):
    """A consent record, consent change or opt-out list that breaks one of its rules."""

    code = "CONSENT_INVALID"


class ConsentStateConflict(ConsentError):
    """A consent change that does not fit the record's state (withdrawing what was never given)."""

    code = "CONSENT_STATE_CONFLICT"
    status_hint = 409
