"""``datatrust doctor``'s certificate checks: the trust CA, then each part's certificate.

A part's certificate must be issued by the trust CA, be within its dates (a warning
``CERTIFICATE_WARN_BEFORE``, 30 days, before expiry: when ``init`` reissues), match its
private key, be the one the signed directory lists for the part, and name the host of the
endpoint the directory lists, as a TLS client checks it. Pure: file contents in, findings out.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from datatrust._doctor import Finding, day, moment, problem, span
from datatrust.network import TrustDirectory, certificate_fingerprint
from datatrust.network._pki import RENEW_BEFORE

__all__ = ["CERTIFICATE_WARN_BEFORE", "CertificateFiles", "certificate_findings"]

CERTIFICATE_WARN_BEFORE = RENEW_BEFORE
REISSUE = (
    "Run `datatrust init`: it reissues a part certificate that is expired, close to expiry or "
    "not from the trust CA. Then restart the part."
)


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """What a part's certificate and key files hold (None: the file could not be read)."""

    part: str
    cert_path: str
    cert_pem: bytes | None
    key_pem: bytes | None


def certificate_findings(
    ca_path: str,
    ca_pem: bytes | None,
    parts: Sequence[CertificateFiles],
    directory: TrustDirectory | None,
    now: dt.datetime,
) -> list[Finding]:
    """The CA, then each part: chain, dates, key, and agreement with the directory."""
    ca = _certificate(ca_pem)
    if ca is None:
        return [
            problem(
                "certificates",
                f"The trust CA certificate {ca_path} is missing or unreadable: no part can "
                "prove it belongs to the trust.",
                "Restore tls/ca.pem and tls/ca.key from a backup (a new CA means reissuing "
                "every certificate: `datatrust init` on an empty tls directory).",
            )
        ]
    findings = [_validity("trust CA", ca_path, ca, now)]
    for files in parts:
        findings.append(_part_finding(files, ca, ca_path, directory, now))
    return findings


def _part_finding(
    files: CertificateFiles,
    ca: x509.Certificate,
    ca_path: str,
    directory: TrustDirectory | None,
    now: dt.datetime,
) -> Finding:
    subject = f"{files.part} certificate"
    certificate = _certificate(files.cert_pem)
    if certificate is None:
        return problem(
            "certificates",
            f"{files.part}'s certificate {files.cert_path} is missing or unreadable: "
            f"{files.part} cannot take part in mutual TLS.",
            "Create it with `datatrust init`.",
            subject,
        )
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return problem(
            "certificates",
            f"{files.part}'s certificate {files.cert_path} was not issued by this trust's CA "
            f"({ca_path}) but by {_common_name(certificate.issuer)!r}: every other part will "
            "refuse it in the TLS handshake.",
            REISSUE,
            subject,
        )
    dates = _validity(subject, files.cert_path, certificate, now)
    if dates.status == "problem":
        return dates
    if not _key_matches(certificate, files.key_pem):
        return problem(
            "certificates",
            f"The private key next to {files.cert_path} is missing or is not the key of "
            f"that certificate: {files.part} cannot complete a TLS handshake.",
            "Restore the matching .key from a backup, or reissue both: move the .pem away and "
            "run `datatrust init`.",
            subject,
        )
    if directory is not None:
        listing = _directory_listing(directory, files.part)
        if listing is not None:
            listed_fingerprint, endpoint = listing
            mismatch = _listing_problem(files, certificate, listed_fingerprint, endpoint)
            if mismatch is not None:
                return mismatch
    return dates


def _listing_problem(
    files: CertificateFiles,
    certificate: x509.Certificate,
    listed_fingerprint: str,
    endpoint: str | None,
) -> Finding | None:
    subject = f"{files.part} certificate"
    fingerprint = certificate_fingerprint(certificate)
    if fingerprint != listed_fingerprint:
        return problem(
            "certificates",
            f"The directory lists another certificate for {files.part} (sha256 "
            f"{listed_fingerprint[:16]}...) than {files.cert_path} (sha256 {fingerprint[:16]}...): "
            f"the other parts will refuse {files.part} as not listed.",
            "Put the new fingerprint in directory.json, raise its version and run `datatrust "
            "directory sign directory.json` (`datatrust init` does it for the demo parts).",
            subject,
        )
    host = urlsplit(endpoint).hostname if endpoint else None
    if host and not _names_host(certificate, host):
        names = ", ".join(_alt_names(certificate)) or "no names"
        return problem(
            "certificates",
            f"{files.part}'s certificate names {names}, but the directory lists {files.part} "
            f"at {endpoint}: callers of that address fail the TLS handshake (the name does "
            "not match).",
            f"Reissue it with the name {host}: move tls/{files.part}.pem away and run "
            f"`datatrust init --host {host}`; or correct the endpoint in the directory.",
            subject,
        )
    return None


def _validity(subject: str, path: str, certificate: x509.Certificate, now: dt.datetime) -> Finding:
    not_after = certificate.not_valid_after_utc
    not_before = certificate.not_valid_before_utc
    if now >= not_after:
        return problem(
            "certificates",
            f"The {subject} {path} expired on {day(not_after)} ({span(now - not_after)} "
            "ago): TLS handshakes with it fail.",
            REISSUE,
            subject,
        )
    if now < not_before:
        return problem(
            "certificates",
            f"The {subject} {path} is not valid until {moment(not_before)}: this machine's "
            "clock or the issuer's is wrong.",
            "Check the clocks (NTP), then reissue it with `datatrust init`.",
            subject,
        )
    left = not_after - now
    if left < CERTIFICATE_WARN_BEFORE:
        return Finding(
            "certificates",
            subject,
            "warning",
            f"The {subject} {path} expires on {day(not_after)} (in {span(left)}). "
            "`datatrust init` reissues part certificates this close to expiry; restart the "
            "part afterwards.",
        )
    return Finding("certificates", subject, "ok", f"valid until {day(not_after)} (in {span(left)})")


def _directory_listing(directory: TrustDirectory, part: str) -> tuple[str, str | None] | None:
    """(fingerprint, endpoint) the directory lists for ``part``; None if it does not list it."""
    for member in directory.members:
        if member.node_id == part:
            return member.certificate_sha256, member.endpoint
    if part == "gateway":
        return directory.gateway.certificate_sha256, directory.gateway.endpoint
    for tool in directory.tools:
        if tool.name == part:
            return tool.certificate_sha256, None
    return None


def _certificate(pem: bytes | None) -> x509.Certificate | None:
    if pem is None:
        return None
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None


def _key_matches(certificate: x509.Certificate, key_pem: bytes | None) -> bool:
    if key_pem is None:
        return False
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return False
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return key.public_key().public_bytes(der, public) == certificate.public_key().public_bytes(
        der, public
    )


def _alt_names(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        *names.get_values_for_type(x509.DNSName),
        *(str(ip) for ip in names.get_values_for_type(x509.IPAddress)),
    ]


def _names_host(certificate: x509.Certificate, host: str) -> bool:
    """Whether ``host`` matches a subjectAltName, as the TLS client checks it (RFC 6125)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for name in _alt_names(certificate):
        if address is not None:
            try:
                if ipaddress.ip_address(name) == address:
                    return True
            except ValueError:
                continue
        elif name.lower() == host.lower() or (
            name.startswith("*.") and host.lower().partition(".")[2] == name[2:].lower()
        ):
            return True
    return False


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()
