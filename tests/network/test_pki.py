"""The trust CA and part certificates: what they contain, file modes, and idempotent init."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from datatrust.network import TlsMaterialError, certificate_fingerprint, init_trust_pki

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def snapshot(folder) -> dict:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_the_ca_is_a_ten_year_p256_ca_that_may_sign_only_end_entity_certificates(tmp_path):
    pki = init_trust_pki(tmp_path, ["council"], now=NOW)
    ca = load(pki.ca)
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (constraints.critical, constraints.value) == (True, x509.BasicConstraints(True, 0))
    assert (usage.key_cert_sign, usage.crl_sign, usage.digital_signature) == (True, True, False)
    assert ca.public_key().curve.name == "secp256r1"
    assert ca.not_valid_after_utc - ca.not_valid_before_utc == dt.timedelta(days=3650, minutes=5)
    assert ca.subject.rfc4514_string() == "CN=datatrust trust CA,O=datatrust"


def test_a_part_certificate_serves_and_connects_on_loopback_for_one_year(tmp_path):
    pki = init_trust_pki(tmp_path, ["council"], now=NOW)
    cert = load(pki.files("council").cert)
    cert.verify_directly_issued_by(load(pki.ca))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.not_valid_after_utc - NOW == dt.timedelta(days=365)
    assert cert.subject.rfc4514_string() == "CN=council,O=datatrust"


def test_subject_names_are_a_parameter_ips_and_dns_names_alike(tmp_path):
    pki = init_trust_pki(tmp_path, ["gateway"], subject_names=["gw.trust.test", "10.0.0.5"])
    names = load(pki.files("gateway").cert).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert [str(n.value) for n in names.value] == ["gw.trust.test", "10.0.0.5"]


def test_the_fingerprint_is_the_sha256_of_the_der_certificate_in_lowercase_hex(tmp_path):
    pki = init_trust_pki(tmp_path, ["tool"])
    pem = pki.files("tool").cert.read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    expected = hashlib.sha256(der).hexdigest()
    assert pki.fingerprints["tool"] == certificate_fingerprint(pem) == expected
    assert certificate_fingerprint(der) == expected


def test_private_keys_are_readable_by_their_owner_only_in_an_owner_only_folder(tmp_path):
    init_trust_pki(tmp_path, ["council", "tool"])
    folder = tmp_path / "tls"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {n: m for n, m in modes.items() if n.endswith(".key")} == {
        "ca.key": 0o600,
        "council.key": 0o600,
        "tool.key": 0o600,
    }


def test_a_second_init_changes_no_file_and_adds_only_new_parts(tmp_path):
    first = init_trust_pki(tmp_path, ["council", "tool"], now=NOW)
    before = snapshot(tmp_path / "tls")
    second = init_trust_pki(tmp_path, ["council", "tool"], now=NOW + dt.timedelta(days=1))
    assert snapshot(tmp_path / "tls") == before
    assert second == first
    third = init_trust_pki(tmp_path, ["council", "tool", "health"], now=NOW)
    after = snapshot(tmp_path / "tls")
    assert sorted(set(after) - set(before)) == ["health.key", "health.pem"]
    assert {n: after[n] for n in before} == before
    assert third.fingerprints["council"] == first.fingerprints["council"]


def test_a_certificate_near_expiry_or_from_a_replaced_ca_is_reissued_with_the_same_key(tmp_path):
    first = init_trust_pki(tmp_path, ["council"], now=NOW)
    key = (tmp_path / "tls" / "council.key").read_bytes()
    renewed = init_trust_pki(tmp_path, ["council"], now=NOW + dt.timedelta(days=340))
    assert renewed.fingerprints["council"] != first.fingerprints["council"]
    (tmp_path / "tls" / "ca.pem").unlink()
    (tmp_path / "tls" / "ca.key").unlink()
    replaced = init_trust_pki(tmp_path, ["council"], now=NOW)
    load(replaced.files("council").cert).verify_directly_issued_by(load(replaced.ca))
    assert (tmp_path / "tls" / "council.key").read_bytes() == key


def test_a_ca_certificate_without_its_key_is_refused_rather_than_replaced(tmp_path):
    init_trust_pki(tmp_path, ["council"])
    (tmp_path / "tls" / "ca.key").unlink()
    with pytest.raises(TlsMaterialError, match=r"ca.pem exists but its key .*ca.key does not"):
        init_trust_pki(tmp_path, ["council"])


def test_a_part_name_that_is_not_a_plain_id_is_refused(tmp_path):
    with pytest.raises(TlsMaterialError) as caught:
        init_trust_pki(tmp_path, ["../evil"])
    assert caught.value.message == (
        "part name '../evil' is not allowed: use lowercase letters, digits and '-' "
        "(it becomes a file name)"
    )


def test_asking_for_a_part_without_a_certificate_names_those_that_have_one(tmp_path):
    pki = init_trust_pki(tmp_path, ["council", "tool"])
    with pytest.raises(TlsMaterialError) as caught:
        pki.files("health")
    assert caught.value.message == (
        "no certificate for part 'health'; the trust has certificates for: council, tool"
    )
