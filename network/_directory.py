"""The trust directory: who the members are, where their nodes listen, which certificates and
token issuers speak for them. One JSON document, signed by the trust operator (``_signing.py``).

Members that run a node are listed under ``members``; member agencies that run none (they
only receive data under agreements, like a university research team) under the optional
``agencies``, with just the issuers their people and systems sign in with. A document
without ``agencies`` is the same document it always was.

Each record validates itself when built and quotes the rule it enforces, so a document that
breaks a rule is refused whole, naming the JSON path: a node never runs on half a directory.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from datatrust.network._errors import DirectoryError

__all__ = [
    "DirectoryAgency",
    "DirectoryGateway",
    "DirectoryIssuer",
    "DirectoryMember",
    "DirectoryPeer",
    "DirectoryTool",
    "TrustDirectory",
]

_FINGERPRINT = re.compile(r"\A[0-9a-f]{64}\Z")
_SLUG = re.compile(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
_LOOPBACK_NAMES = {"localhost"}


@dataclass(frozen=True)
class DirectoryIssuer:
    """An identity provider whose tokens a node accepts for one agency."""

    issuer: str
    jwks_uri: str

    def __post_init__(self) -> None:
        why = "signing keys fetched in clear could be swapped on the way"
        _check_url(self.issuer, "issuer", why, loopback_http=True)
        _check_url(self.jwks_uri, "jwks_uri", why, loopback_http=True)


@dataclass(frozen=True)
class DirectoryMember:
    """One member agency's node: where it listens and the certificate it presents."""

    agency: str
    node_id: str
    endpoint: str
    certificate_sha256: str
    capabilities: tuple[str, ...]
    issuers: tuple[DirectoryIssuer, ...]

    def __post_init__(self) -> None:
        _check_slug(self.agency, "agency")
        _check_slug(self.node_id, "node_id")
        _check_url(self.endpoint, "endpoint", "members talk only over mutual TLS")
        _check_fingerprint(self.certificate_sha256, "certificate_sha256")
        for index, capability in enumerate(self.capabilities):
            if not isinstance(capability, str) or not _SLUG.fullmatch(capability):
                raise DirectoryError(
                    f"{capability!r} is not a capability name (lowercase letters, digits, '-')",
                    location=f"capabilities[{index}]",
                )
        if len(set(self.capabilities)) != len(self.capabilities):
            raise DirectoryError("a capability is listed twice", location="capabilities")
        if not self.issuers:
            raise DirectoryError(
                "no token issuer: every member lists at least one issuer its people and "
                "systems sign in with",
                location="issuers",
            )


@dataclass(frozen=True)
class DirectoryAgency:
    """A member agency that runs no node: it holds no data, so it has no endpoint or certificate.

    It receives data under the trust's agreements (the university in the demo's research
    agreement), so the nodes must still know which identity providers may vouch for its
    people and systems: ``issuers``. Whether it may see anything is for the agreements to
    say; being listed here only lets its tokens be verified.
    """

    agency: str
    issuers: tuple[DirectoryIssuer, ...]

    def __post_init__(self) -> None:
        _check_slug(self.agency, "agency")
        if not self.issuers:
            raise DirectoryError(
                "no token issuer: an agency without a node is listed only for the issuers its "
                "people and systems sign in with",
                location="issuers",
            )


@dataclass(frozen=True)
class DirectoryGateway:
    """The trust's gateway: its certificate proves it is the gateway, not that it may see data."""

    endpoint: str
    certificate_sha256: str

    def __post_init__(self) -> None:
        _check_url(self.endpoint, "endpoint", "the gateway talks to nodes only over mutual TLS")
        _check_fingerprint(self.certificate_sha256, "certificate_sha256")


@dataclass(frozen=True)
class DirectoryTool:
    """A local tool or test client allowed to connect (its requests still need a token)."""

    name: str
    certificate_sha256: str
    role: str = "tool"

    def __post_init__(self) -> None:
        _check_slug(self.name, "name")
        _check_fingerprint(self.certificate_sha256, "certificate_sha256")
        if self.role != "tool":
            raise DirectoryError(
                f"role is {self.role!r}; the only tool role is 'tool'", location="role"
            )


@dataclass(frozen=True)
class DirectoryPeer:
    """Who a listed certificate belongs to: ``kind`` is member, gateway or tool."""

    kind: str
    name: str
    agency: str | None = None


@dataclass(frozen=True)
class TrustDirectory:
    """The whole directory, as signed: members, the gateway, local tools and nodeless agencies."""

    trust: str
    version: int
    issued_at: dt.datetime
    expires_at: dt.datetime
    members: tuple[DirectoryMember, ...]
    gateway: DirectoryGateway
    tools: tuple[DirectoryTool, ...] = ()
    agencies: tuple[DirectoryAgency, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.trust, str) or not self.trust.strip():
            raise DirectoryError("the trust needs a name", location="trust")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise DirectoryError(
                f"{self.version!r} is not a version: a whole number from 1, raised at every "
                "change so nodes can refuse an older directory",
                location="version",
            )
        if self.expires_at <= self.issued_at:
            raise DirectoryError("expires_at is not after issued_at", location="expires_at")
        if not self.members:
            raise DirectoryError("a trust directory lists at least one member", location="members")
        _check_unique([m.node_id for m in self.members], "node_id", "members")
        _check_unique([t.name for t in self.tools], "name", "tools")
        _check_unique([a.agency for a in self.agencies], "agency", "agencies")
        with_nodes = {m.agency for m in self.members}
        for index, agency in enumerate(self.agencies):
            if agency.agency in with_nodes:
                raise DirectoryError(
                    f"agency {agency.agency!r} runs a node: list its issuers on its entry in "
                    "members, not here",
                    location=f"agencies[{index}]",
                )
        owners: dict[str, str] = {}
        for location, fingerprint in self._certificates():
            if fingerprint in owners:
                raise DirectoryError(
                    f"certificate {fingerprint} is also listed at {owners[fingerprint]}: one "
                    "certificate identifies one party",
                    location=location,
                )
            owners[fingerprint] = location

    def peer(self, fingerprint: str) -> DirectoryPeer | None:
        """Who presents the certificate with this SHA-256; None when the directory omits it."""
        for member in self.members:
            if member.certificate_sha256 == fingerprint:
                return DirectoryPeer("member", member.node_id, member.agency)
        if self.gateway.certificate_sha256 == fingerprint:
            return DirectoryPeer("gateway", "gateway")
        for tool in self.tools:
            if tool.certificate_sha256 == fingerprint:
                return DirectoryPeer("tool", tool.name)
        return None

    def issuers_for(self, agency: str) -> tuple[DirectoryIssuer, ...]:
        """The issuers whose tokens may speak for ``agency`` (none if it is not a member).

        A member is an agency with a node (``members``) or without one (``agencies``).
        """
        return tuple(
            i for m in (*self.members, *self.agencies) if m.agency == agency for i in m.issuers
        )

    def to_document(self) -> dict[str, Any]:
        """The JSON document (the exact inverse of ``from_document``).

        ``agencies`` is written only when there are some, so a directory without nodeless
        agencies stays readable by nodes that predate the key.
        """
        document = {
            "trust": self.trust,
            "version": self.version,
            "issued_at": _timestamp(self.issued_at),
            "expires_at": _timestamp(self.expires_at),
            "members": [
                {
                    "agency": m.agency,
                    "node_id": m.node_id,
                    "endpoint": m.endpoint,
                    "certificate_sha256": m.certificate_sha256,
                    "capabilities": list(m.capabilities),
                    "issuers": [_issuer_document(i) for i in m.issuers],
                }
                for m in self.members
            ],
            "gateway": {
                "endpoint": self.gateway.endpoint,
                "certificate_sha256": self.gateway.certificate_sha256,
            },
            "tools": [
                {"name": t.name, "certificate_sha256": t.certificate_sha256, "role": t.role}
                for t in self.tools
            ],
        }
        if self.agencies:
            document["agencies"] = [
                {"agency": a.agency, "issuers": [_issuer_document(i) for i in a.issuers]}
                for a in self.agencies
            ]
        return document

    @classmethod
    def from_document(cls, document: Any) -> TrustDirectory:
        """Build from parsed JSON, refusing unknown or missing keys by name and JSON path."""
        top = _fields(document, "", _TOP_KEYS, optional={"tools", "agencies"})
        members = []
        for index, raw in enumerate(_list(top["members"], "members")):
            where = f"members[{index}]"
            member = _fields(raw, where, _MEMBER_KEYS)
            member["capabilities"] = tuple(_list(member["capabilities"], f"{where}.capabilities"))
            member["issuers"] = _issuers(member["issuers"], f"{where}.issuers")
            members.append(_build(DirectoryMember, member, where))
        agencies = []
        for index, raw in enumerate(_list(top.get("agencies", []), "agencies")):
            where = f"agencies[{index}]"
            agency = _fields(raw, where, _AGENCY_KEYS)
            agency["issuers"] = _issuers(agency["issuers"], f"{where}.issuers")
            agencies.append(_build(DirectoryAgency, agency, where))
        gateway = _build(
            DirectoryGateway, _fields(top["gateway"], "gateway", _GATEWAY_KEYS), "gateway"
        )
        tools = []
        for index, raw in enumerate(_list(top.get("tools", []), "tools")):
            tool = _fields(raw, f"tools[{index}]", _TOOL_KEYS, optional={"role"})
            tools.append(_build(DirectoryTool, tool, f"tools[{index}]"))
        return _build(
            cls,
            {
                "trust": top["trust"],
                "version": top["version"],
                "issued_at": _parse_timestamp(top["issued_at"], "issued_at"),
                "expires_at": _parse_timestamp(top["expires_at"], "expires_at"),
                "members": tuple(members),
                "gateway": gateway,
                "tools": tuple(tools),
                "agencies": tuple(agencies),
            },
            "",
        )

    def _certificates(self) -> list[tuple[str, str]]:
        return [
            *((f"members[{i}]", m.certificate_sha256) for i, m in enumerate(self.members)),
            ("gateway", self.gateway.certificate_sha256),
            *((f"tools[{i}]", t.certificate_sha256) for i, t in enumerate(self.tools)),
        ]


_TOP_KEYS = (
    "trust",
    "version",
    "issued_at",
    "expires_at",
    "members",
    "gateway",
    "tools",
    "agencies",
)
_MEMBER_KEYS = ("agency", "node_id", "endpoint", "certificate_sha256", "capabilities", "issuers")
_ISSUER_KEYS = ("issuer", "jwks_uri")
_GATEWAY_KEYS = ("endpoint", "certificate_sha256")
_TOOL_KEYS = ("name", "certificate_sha256", "role")
_AGENCY_KEYS = ("agency", "issuers")


def _issuers(raw: Any, where: str) -> tuple[DirectoryIssuer, ...]:
    return tuple(
        _build(DirectoryIssuer, _fields(item, f"{where}[{n}]", _ISSUER_KEYS), f"{where}[{n}]")
        for n, item in enumerate(_list(raw, where))
    )


def _issuer_document(issuer: DirectoryIssuer) -> dict[str, str]:
    return {"issuer": issuer.issuer, "jwks_uri": issuer.jwks_uri}


def _fields(
    raw: Any, where: str, keys: tuple[str, ...], optional: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise DirectoryError(
            f"expected a JSON object, found {type(raw).__name__}", location=where or "$"
        )
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise DirectoryError(
            f"unknown key {unknown[0]!r}; the keys here are {', '.join(keys)}",
            location=where or "$",
        )
    missing = [k for k in keys if k not in raw and k not in optional]
    if missing:
        raise DirectoryError(f"missing key {missing[0]!r}", location=where or "$")
    return dict(raw)


def _list(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise DirectoryError(f"expected a JSON array, found {type(raw).__name__}", location=where)
    return raw


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build a record, adding ``where`` to the location of any rule it breaks."""
    try:
        return cls(**values)
    except DirectoryError as error:
        location = ".".join(p for p in (where, error.location) if p) or None
        raise DirectoryError(error.reason, location=location) from None


def _check_slug(value: Any, field: str) -> None:
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        raise DirectoryError(
            f"{value!r} is not an id (lowercase letters, digits and '-', starting with a letter "
            "or digit)",
            location=field,
        )


def _check_fingerprint(value: Any, field: str) -> None:
    if not isinstance(value, str) or not _FINGERPRINT.fullmatch(value):
        raise DirectoryError(
            f"{value!r} is not a certificate fingerprint: the SHA-256 of the DER certificate "
            "as 64 lowercase hex digits",
            location=field,
        )


def _check_url(value: Any, field: str, why: str, *, loopback_http: bool = False) -> None:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or not parts.hostname or parts.scheme not in ("https", "http"):
        raise DirectoryError(f"{value!r} is not an absolute URL", location=field)
    if parts.scheme == "http" and not (loopback_http and _is_loopback(parts.hostname)):
        allowed = " (plain http only on this machine's loopback)" if loopback_http else ""
        raise DirectoryError(f"{value!r} is not an https URL{allowed}: {why}", location=field)


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_unique(values: list[str], field: str, where: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise DirectoryError(f"{field} {value!r} is listed twice", location=f"{where}[{index}]")
        seen.add(value)


def _parse_timestamp(value: Any, field: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise DirectoryError(
            f"{value!r} is not an ISO 8601 time with a time zone, such as 2026-01-31T12:00:00Z",
            location=field,
        )
    return parsed.astimezone(dt.UTC)


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
