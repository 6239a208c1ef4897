"""The trust's own certificate authority and one certificate per part, for mutual TLS.

Nodes, the gateway, the identity server and local tools each hold a certificate issued by the
trust CA; a node accepts a TLS client only with such a certificate *and* only if the signed
trust directory lists its fingerprint (``_tls.py``). So the CA alone never grants access: it
proves "issued by this trust", the directory says "a member today".

Files, under ``<data_dir>/tls/`` (mode 0700)::

    ca.pem, ca.key            the trust CA (ECDSA P-256, 10 years, CA:true pathlen 0)
    <part>.pem, <part>.key    one per part (1 year, serverAuth + clientAuth)

Private keys are 0600. ``init_trust_pki`` is idempotent: it keeps every existing file and
issues only what is missing, what the current CA did not sign, what expires within
``RENEW_BEFORE`` or what lacks a name it must carry; a part's existing key is reused when its
certificate is reissued.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from datatrust.network._errors import TlsMaterialError
from datatrust.network._files import ensure_private_dir, write_file

__all__ = [
    "DEFAULT_SUBJECT_NAMES",
    "TlsFiles",
    "TrustPki",
    "certificate_fingerprint",
    "init_trust_pki",
]

CA_VALIDITY = dt.timedelta(days=3650)
PART_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
"""A part certificate this close to expiry is reissued by the next ``init``."""

DEFAULT_SUBJECT_NAMES = ("localhost", "127.0.0.1")
"""Names every part certificate carries by default: a trust on one machine, on loopback."""

_PART_NAME = re.compile(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")


@dataclass(frozen=True)
class TlsFiles:
    """What one process needs for mutual TLS: its certificate and key, and the trust CA."""

    cert: Path
    key: Path
    ca: Path

    def __iter__(self) -> Iterator[Path]:
        """``cert, key, ca``: so ``server_ssl_context(*files)`` reads naturally."""
        return iter((self.cert, self.key, self.ca))


@dataclass(frozen=True)
class TrustPki:
    """The trust CA and the certificate files and fingerprints of each part."""

    ca: Path
    parts: Mapping[str, TlsFiles]
    fingerprints: Mapping[str, str]
    """Part name to the SHA-256 of its DER certificate, lowercase hex (what the directory lists)."""

    def files(self, part: str) -> TlsFiles:
        try:
            return self.parts[part]
        except KeyError:
            known = ", ".join(sorted(self.parts))
            raise TlsMaterialError(
                f"no certificate for part {part!r}; the trust has certificates for: {known}"
            ) from None


def certificate_fingerprint(certificate: x509.Certificate | bytes) -> str:
    """SHA-256 of the DER encoding, lowercase hex; ``certificate`` may be DER or PEM bytes."""
    if isinstance(certificate, bytes):
        if certificate.lstrip().startswith(b"-----BEGIN"):
            certificate = x509.load_pem_x509_certificate(certificate)
        else:
            return hashlib.sha256(certificate).hexdigest()
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def init_trust_pki(
    data_dir: Path,
    parts: Sequence[str],
    *,
    subject_names: Sequence[str] = DEFAULT_SUBJECT_NAMES,
    part_names: Mapping[str, Sequence[str]] | None = None,
    trust_name: str = "datatrust",
    now: dt.datetime | None = None,
) -> TrustPki:
    """Create (or complete) the trust CA and a certificate for each of ``parts``.

    ``subject_names`` go into each certificate's subjectAltName: IP addresses as IP entries,
    anything else as DNS names. ``part_names`` adds names for single parts: the address of a
    part that runs on another host, so clients reaching it there can check its certificate.
    Existing files are kept (see the module docstring).
    """
    part_names = part_names or {}
    unknown = sorted(set(part_names) - set(parts))
    if unknown:
        raise TlsMaterialError(
            f"no part named {', '.join(map(repr, unknown))}; the parts are: {', '.join(parts)}"
        )
    now = now or dt.datetime.now(dt.UTC)
    for part in parts:
        if not _PART_NAME.fullmatch(part):
            raise TlsMaterialError(
                f"part name {part!r} is not allowed: use lowercase letters, digits and '-' "
                "(it becomes a file name)"
            )
    tls_dir = ensure_private_dir(data_dir / "tls")
    ca_cert, ca_key = _load_or_create_ca(tls_dir, trust_name, now)
    ca_path = tls_dir / "ca.pem"
    files: dict[str, TlsFiles] = {}
    fingerprints: dict[str, str] = {}
    for part in parts:
        cert_path, key_path = tls_dir / f"{part}.pem", tls_dir / f"{part}.key"
        names = tuple(dict.fromkeys((*subject_names, *part_names.get(part, ()))))
        certificate = _load_certificate(cert_path) if cert_path.exists() else None
        if certificate is None or _needs_reissue(certificate, ca_cert, names, now):
            key = _load_or_create_key(key_path)
            certificate = _issue(part, key, ca_cert, ca_key, names, now)
            write_file(
                cert_path, certificate.public_bytes(serialization.Encoding.PEM), private=False
            )
        files[part] = TlsFiles(cert=cert_path, key=key_path, ca=ca_path)
        fingerprints[part] = certificate_fingerprint(certificate)
    return TrustPki(ca=ca_path, parts=files, fingerprints=fingerprints)


def _load_or_create_ca(
    tls_dir: Path, trust_name: str, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = tls_dir / "ca.pem", tls_dir / "ca.key"
    if cert_path.exists():
        if not key_path.exists():
            raise TlsMaterialError(
                f"{cert_path} exists but its key {key_path} does not: restore the key from "
                "backup, or move the tls directory away to start a new CA (every part "
                "certificate is then reissued)"
            )
        certificate, key = _load_certificate(cert_path), _load_private_key(key_path)
        if certificate.public_key().public_numbers() != key.public_key().public_numbers():
            raise TlsMaterialError(f"{key_path} is not the key of the CA certificate {cert_path}")
        return certificate, key
    key = _load_or_create_key(key_path)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_name),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{trust_name} trust CA"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_file(cert_path, certificate.public_bytes(serialization.Encoding.PEM), private=False)
    return certificate, key


def _issue(
    part: str,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject_names: Sequence[str],
    now: dt.datetime,
) -> x509.Certificate:
    organisation = ca_cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    subject = x509.Name([*organisation, x509.NameAttribute(NameOID.COMMON_NAME, part)])
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + PART_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(_alt_names(subject_names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _needs_reissue(
    certificate: x509.Certificate,
    ca_cert: x509.Certificate,
    names: Sequence[str],
    now: dt.datetime,
) -> bool:
    try:
        certificate.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return True
    if not set(_alt_names(names)) <= set(_certificate_names(certificate)):
        return True  # a name was added (a part moved to another host): reissue with it
    return certificate.not_valid_after_utc - now < RENEW_BEFORE


def _certificate_names(certificate: x509.Certificate) -> list[x509.GeneralName]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(extension.value)


def _alt_names(subject_names: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in subject_names:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        return _load_private_key(path)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_file(path, pem, private=True)
    return key


def _load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise TlsMaterialError(f"cannot read the private key {path}: {error}") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TlsMaterialError(f"{path} is not an ECDSA private key")
    return key


def _load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as error:
        raise TlsMaterialError(f"cannot read the certificate {path}: {error}") from error
