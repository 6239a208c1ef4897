"""The operator's signature over the directory, and every way a directory is refused."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from datatrust.network import (
    DirectoryError,
    TrustDirectory,
    load_operator_public_key,
    operator_public_key_path,
    sign_directory,
    verify_directory,
)
from tests.network.conftest import NOW, directory_document


def b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def refusal(value: str, key: ECKey, now: dt.datetime = NOW) -> str:
    with pytest.raises(DirectoryError) as caught:
        verify_directory(value, key, now=now)
    return caught.value.message


def test_a_signed_directory_verifies_with_the_published_public_key(trust):
    document = directory_document(trust.pki)
    public = load_operator_public_key(operator_public_key_path(trust.data_dir))
    verified = verify_directory(trust.sign(document), public, now=NOW)
    assert verified == TrustDirectory.from_document(document)
    assert not public.is_private


def test_the_public_key_may_also_be_given_as_a_jwk_file(trust, tmp_path):
    path = tmp_path / "operator.jwk"
    path.write_text(json.dumps(trust.operator_key.as_dict(private=False)))
    public = load_operator_public_key(path)
    assert verify_directory(trust.sign(directory_document(trust.pki)), public, now=NOW).version == 1


def test_one_changed_byte_in_the_payload_breaks_the_signature(trust):
    header, payload, signature = trust.sign(directory_document(trust.pki)).split(".")
    changed = payload[:40] + ("A" if payload[40] != "A" else "B") + payload[41:]
    assert refusal(f"{header}.{changed}.{signature}", trust.operator_key) == (
        "the signature does not match the operator's key: the directory was changed after it "
        "was signed, or signed with another key (bad_signature)"
    )


def test_a_directory_with_a_rewritten_payload_and_the_old_signature_is_refused(trust):
    header, _, signature = trust.sign(directory_document(trust.pki)).split(".")
    forged = directory_document(trust.pki)
    forged["tools"][0]["certificate_sha256"] = trust.pki.fingerprints["stranger"]
    assert refusal(f"{header}.{b64(forged)}.{signature}", trust.operator_key).startswith(
        "the signature does not match the operator's key"
    )


def test_a_directory_signed_by_another_key_is_refused_by_its_key_id(trust):
    other = ECKey.generate_key("P-256", auto_kid=True)
    signed = sign_directory(TrustDirectory.from_document(directory_document(trust.pki)), other)
    assert refusal(signed, trust.operator_key) == (
        f"the directory is signed by key {other.kid!r}, not by the operator's key "
        f"{trust.operator_key.kid!r}"
    )


@pytest.mark.parametrize("algorithm", ["none", "HS256", "RS256", "ES384"])
def test_any_algorithm_but_es256_is_refused_by_name(trust, algorithm):
    header = {"alg": algorithm, "typ": "trust-directory+jws"}
    value = f"{b64(header)}.{b64(directory_document(trust.pki))}.{b64(b'sig')}"
    assert refusal(value, trust.operator_key) == (
        f"the directory is signed with alg {algorithm!r}; a trust directory is accepted only "
        "signed with ES256 by the operator's key"
    )


def test_an_hs256_signature_keyed_with_the_operator_public_key_is_refused(trust):
    public_pem = trust.operator_key.as_pem(private=False)
    header = b64({"alg": "HS256", "typ": "trust-directory+jws"})
    signing_input = f"{header}.{b64(directory_document(trust.pki))}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(mac)}"
    assert "signed with alg 'HS256'" in refusal(forged, trust.operator_key)


def test_a_header_that_names_its_own_key_is_refused(trust):
    header = {"alg": "ES256", "typ": "trust-directory+jws", "jwk": {"kty": "EC"}}
    value = f"{b64(header)}.{b64(directory_document(trust.pki))}.{b64(b'sig')}"
    assert refusal(value, trust.operator_key) == (
        "the directory's header names a key ('jwk'); only the operator key the node was given "
        "is used, so such a header is refused"
    )


def test_another_kind_of_jws_from_the_operator_key_is_not_a_directory(trust):
    payload = json.dumps(directory_document(trust.pki)).encode()
    other = jws.serialize_compact({"alg": "ES256", "typ": "JWT"}, payload, trust.operator_key)
    assert refusal(other, trust.operator_key) == (
        "the JWS has typ 'JWT', not 'trust-directory+jws': it is not a trust directory"
    )


def test_an_expired_directory_is_refused_with_when_and_what_to_do(trust):
    signed = trust.sign(directory_document(trust.pki))
    assert refusal(signed, trust.operator_key, now=NOW + dt.timedelta(days=30)) == (
        "version 1 expired at 2026-04-01T09:30:00Z: the operator must sign a fresh one "
        "(datatrust directory sign)"
    )


def test_a_directory_not_valid_yet_is_refused_beyond_a_minute_of_clock_skew(trust):
    signed = trust.sign(directory_document(trust.pki))
    early = NOW - dt.timedelta(hours=1, seconds=30)
    assert verify_directory(signed, trust.operator_key, now=early).version == 1
    too_early = NOW - dt.timedelta(hours=1, minutes=2)
    assert refusal(signed, trust.operator_key, now=too_early) == (
        "version 1 is not valid yet: it is issued at 2026-03-02T08:30:00Z and this clock says "
        "2026-03-02T08:28:00Z; check the clocks"
    )


@pytest.mark.parametrize("value", ["", "not a jws", "a.b", "a.b.c.d"])
def test_something_that_is_not_a_compact_jws_is_refused(trust, value):
    assert refusal(value, trust.operator_key) == (
        "not a signed directory: expected a compact JWS (three base64url parts joined by "
        "dots), as written by datatrust directory sign"
    )
