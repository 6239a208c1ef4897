"""A node over real mutual TLS on loopback: who gets through the handshake, then the directory.

In TLS 1.3 the client finishes its side of the handshake before the server has checked the
client's certificate, so a refused client sees the connection closed without a response; the
TLS 1.2 probes show the same refusal inside the handshake itself.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import httpx
import pytest

from datatrust.network import client_ssl_context, server_ssl_context


def client_without_certificate(trust) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=trust.pki.ca)
    return context


def test_the_listed_tool_certificate_is_accepted_over_tls_1_3_and_named(trust, live_node):
    with httpx.Client(verify=client_ssl_context(*trust.pki.files("tool"))) as client:
        response = client.get(f"{live_node.url}/whoami")
    assert (response.status_code, response.json()) == (
        200,
        {"kind": "tool", "name": "tool", "agency": None, "tls_version": "0x304"},
    )


def test_a_member_node_certificate_is_accepted_as_that_member(trust, live_node):
    with httpx.Client(verify=client_ssl_context(*trust.pki.files("health"))) as client:
        response = client.get(f"{live_node.url}/whoami")
    assert response.json() == {
        "kind": "member",
        "name": "health",
        "agency": "health",
        "tls_version": "0x304",
    }


def test_a_trust_ca_certificate_the_directory_does_not_list_gets_403_naming_why(trust, live_node):
    fingerprint = trust.pki.fingerprints["stranger"]
    with httpx.Client(verify=client_ssl_context(*trust.pki.files("stranger"))) as client:
        response = client.get(f"{live_node.url}/whoami")
    assert response.status_code == 403
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": f"the client certificate (sha256 {fingerprint}) is not listed in "
                "trust directory 'test trust' version 1",
                "extensions": {"code": "PEER_NOT_LISTED", "certificate_sha256": fingerprint},
            }
        ],
    }


def handshake_over_tls_1_2(url: str, context: ssl.SSLContext) -> None:
    """In TLS 1.2 the server checks the client's certificate inside the handshake itself."""
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    parts = urlsplit(url)
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=parts.hostname),
    ):
        pass


def test_a_client_without_a_certificate_never_completes_the_handshake(trust, live_node):
    before = len(live_node.requests_seen)
    with (
        httpx.Client(verify=client_without_certificate(trust)) as client,
        pytest.raises(
            httpx.RemoteProtocolError, match=r"^Server disconnected without sending a response\.$"
        ),
    ):
        client.get(f"{live_node.url}/whoami")
    with pytest.raises(ssl.SSLEOFError):
        handshake_over_tls_1_2(live_node.url, client_without_certificate(trust))
    assert len(live_node.requests_seen) == before


def test_a_certificate_from_another_ca_fails_the_handshake(trust, other_ca, live_node):
    files = other_ca.files("tool")
    before = len(live_node.requests_seen)
    with (
        httpx.Client(verify=client_ssl_context(files.cert, files.key, trust.pki.ca)) as client,
        pytest.raises(
            httpx.RemoteProtocolError, match=r"^Server disconnected without sending a response\.$"
        ),
    ):
        client.get(f"{live_node.url}/whoami")
    with pytest.raises(ssl.SSLEOFError):
        handshake_over_tls_1_2(
            live_node.url, client_ssl_context(files.cert, files.key, trust.pki.ca)
        )
    assert len(live_node.requests_seen) == before


def test_the_client_refuses_a_server_whose_certificate_another_ca_issued(
    trust, other_ca, live_node
):
    """The other direction: our client trusts only the CA it is given."""
    files = trust.pki.files("tool")
    context = client_ssl_context(files.cert, files.key, other_ca.ca)
    with (
        httpx.Client(verify=context) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get(f"{live_node.url}/whoami")


def test_the_contexts_require_tls_1_2_at_least_and_check_both_ends(trust):
    server = server_ssl_context(*trust.pki.files("council"))
    client = client_ssl_context(*trust.pki.files("tool"))
    assert server.minimum_version == client.minimum_version == ssl.TLSVersion.TLSv1_2
    assert (server.verify_mode, client.verify_mode) == (ssl.CERT_REQUIRED, ssl.CERT_REQUIRED)
    assert client.check_hostname is True
