"""The directory document: every rule refuses the whole document, naming the JSON path."""

from __future__ import annotations

import copy

import pytest

from datatrust.network import (
    DirectoryAgency,
    DirectoryError,
    DirectoryIssuer,
    DirectoryPeer,
    TrustDirectory,
    load_operator_public_key,
    operator_public_key_path,
    verify_directory,
)
from tests.network.conftest import NOW, directory_document

UNIVERSITY_IDP = {"issuer": "https://idp.uni.test", "jwks_uri": "https://idp.uni.test/jwks"}


def with_university(document: dict) -> dict:
    """``document`` with an agency that runs no node: the university of a research agreement."""
    return {**document, "agencies": [{"agency": "university", "issuers": [UNIVERSITY_IDP]}]}


def refusal(document: dict) -> str:
    with pytest.raises(DirectoryError) as caught:
        TrustDirectory.from_document(document)
    return caught.value.message


def test_a_document_round_trips_exactly(trust):
    document = directory_document(trust.pki)
    assert TrustDirectory.from_document(document).to_document() == document


def test_peers_are_found_by_certificate_and_unknown_ones_are_none(trust):
    directory = TrustDirectory.from_document(directory_document(trust.pki))
    fingerprints = trust.pki.fingerprints
    assert directory.peer(fingerprints["health"]) == DirectoryPeer("member", "health", "health")
    assert directory.peer(fingerprints["gateway"]) == DirectoryPeer("gateway", "gateway")
    assert directory.peer(fingerprints["tool"]) == DirectoryPeer("tool", "tool")
    assert directory.peer(fingerprints["stranger"]) is None
    assert [i.issuer for i in directory.issuers_for("council")] == ["http://127.0.0.1:8404"]
    assert directory.issuers_for("housing") == ()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["members"][1].__setitem__("endpoint", "http://10.0.0.2:8402"),
            "members[1].endpoint: 'http://10.0.0.2:8402' is not an https URL: members talk "
            "only over mutual TLS",
        ),
        (
            lambda d: d["members"][0]["issuers"][0].__setitem__("jwks_uri", "http://idp.test/k"),
            "members[0].issuers[0].jwks_uri: 'http://idp.test/k' is not an https URL (plain "
            "http only on this machine's loopback): signing keys fetched in clear could be "
            "swapped on the way",
        ),
        (
            lambda d: d["gateway"].__setitem__("certificate_sha256", "AB" * 32),
            f"gateway.certificate_sha256: {'AB' * 32!r} is not a certificate fingerprint: the "
            "SHA-256 of the DER certificate as 64 lowercase hex digits",
        ),
        (
            lambda d: d["tools"][0].__setitem__(
                "certificate_sha256", d["members"][0]["certificate_sha256"]
            ),
            "tools[0]: certificate {council} is also listed at members[0]: one certificate "
            "identifies one party",
        ),
        (
            lambda d: d["members"][1].__setitem__("node_id", "council"),
            "members[1]: node_id 'council' is listed twice",
        ),
        (
            lambda d: d.__setitem__("expires_at", d["issued_at"]),
            "expires_at: expires_at is not after issued_at",
        ),
        (
            lambda d: d.__setitem__("issued_at", "2026-03-02 09:00"),
            "issued_at: '2026-03-02 09:00' is not an ISO 8601 time with a time zone, such as "
            "2026-01-31T12:00:00Z",
        ),
        (
            lambda d: d.__setitem__("version", True),
            "version: True is not a version: a whole number from 1, raised at every change so "
            "nodes can refuse an older directory",
        ),
        (
            lambda d: d["members"][0].__setitem__("endpiont", "typo"),
            "members[0]: unknown key 'endpiont'; the keys here are agency, node_id, endpoint, "
            "certificate_sha256, capabilities, issuers",
        ),
        (lambda d: d["gateway"].pop("endpoint"), "gateway: missing key 'endpoint'"),
        (
            lambda d: d["members"][0].__setitem__("issuers", []),
            "members[0].issuers: no token issuer: every member lists at least one issuer its "
            "people and systems sign in with",
        ),
        (
            lambda d: d["members"][0].__setitem__("capabilities", ["subgraph", "Sub Graph"]),
            "members[0].capabilities[1]: 'Sub Graph' is not a capability name (lowercase "
            "letters, digits, '-')",
        ),
        (
            lambda d: d.__setitem__("members", []),
            "members: a trust directory lists at least one member",
        ),
        (
            lambda d: d["tools"][0].__setitem__("role", "admin"),
            "tools[0].role: role is 'admin'; the only tool role is 'tool'",
        ),
        (
            lambda d: d.__setitem__("agencys", []),
            "$: unknown key 'agencys'; the keys here are trust, version, issued_at, expires_at, "
            "members, gateway, tools, agencies",
        ),
        (
            lambda d: d.__setitem__(
                "agencies",
                [{"agency": "university", "issuers": [], "endpoint": "https://uni.test"}],
            ),
            "agencies[0]: unknown key 'endpoint'; the keys here are agency, issuers",
        ),
        (
            lambda d: d.__setitem__("agencies", [{"agency": "university", "issuers": []}]),
            "agencies[0].issuers: no token issuer: an agency without a node is listed only for "
            "the issuers its people and systems sign in with",
        ),
        (
            lambda d: d.__setitem__(
                "agencies",
                [{"agency": "university", "issuers": [{**UNIVERSITY_IDP, "kid": "k1"}]}],
            ),
            "agencies[0].issuers[0]: unknown key 'kid'; the keys here are issuer, jwks_uri",
        ),
        (
            lambda d: d.__setitem__("agencies", [{"agency": "University", "issuers": []}]),
            "agencies[0].agency: 'University' is not an id (lowercase letters, digits and '-', "
            "starting with a letter or digit)",
        ),
        (
            lambda d: d.__setitem__("agencies", [{"issuers": [UNIVERSITY_IDP]}]),
            "agencies[0]: missing key 'agency'",
        ),
        (
            lambda d: d.__setitem__("agencies", {"university": [UNIVERSITY_IDP]}),
            "agencies: expected a JSON array, found dict",
        ),
        (
            lambda d: d.__setitem__(
                "agencies", [{"agency": "health", "issuers": [UNIVERSITY_IDP]}]
            ),
            "agencies[0]: agency 'health' runs a node: list its issuers on its entry in members, "
            "not here",
        ),
        (
            lambda d: d.__setitem__(
                "agencies",
                [{"agency": "university", "issuers": [UNIVERSITY_IDP]}] * 2,
            ),
            "agencies[1]: agency 'university' is listed twice",
        ),
    ],
)
def test_a_document_breaking_a_rule_is_refused_naming_where(trust, change, message):
    document = copy.deepcopy(directory_document(trust.pki))
    change(document)
    expected = message.replace("{council}", trust.pki.fingerprints["council"])
    assert refusal(document) == expected


def test_an_agency_without_a_node_round_trips_and_its_issuers_speak_for_it(trust):
    document = with_university(directory_document(trust.pki))
    directory = TrustDirectory.from_document(document)
    assert directory.to_document() == document
    assert directory.agencies == (
        DirectoryAgency("university", (DirectoryIssuer(**UNIVERSITY_IDP),)),
    )
    assert directory.issuers_for("university") == (DirectoryIssuer(**UNIVERSITY_IDP),)
    assert [i.issuer for i in directory.issuers_for("council")] == ["http://127.0.0.1:8404"]


def test_a_signed_directory_with_agencies_verifies_to_the_same_document(trust):
    document = with_university(directory_document(trust.pki))
    public = load_operator_public_key(operator_public_key_path(trust.data_dir))
    verified = verify_directory(trust.sign(document), public, now=NOW)
    assert verified.to_document() == document
    assert verified.issuers_for("university") == (DirectoryIssuer(**UNIVERSITY_IDP),)


def test_a_directory_without_agencies_is_written_without_the_key(trust):
    """Nodes that predate ``agencies`` refuse unknown keys, so it is left out when empty."""
    document = {**directory_document(trust.pki), "agencies": []}
    written = TrustDirectory.from_document(document).to_document()
    assert "agencies" not in written
    assert written == directory_document(trust.pki)


def test_something_that_is_not_an_object_is_refused():
    assert refusal([]) == "$: expected a JSON object, found list"
