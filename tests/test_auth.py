import json

import pytest

from datatrust._auth import build_authenticator, trusted_issuers
from datatrust._network_cli import init_local_trust, signed_directory_path
from datatrust.errors import AuthenticationFailed, SettingsError
from datatrust.network import (
    TrustDirectory,
    init_trust_pki,
    load_or_create_operator_key,
    operator_public_key_path,
    sign_directory,
)
from datatrust.settings import GATEWAY_AUDIENCE as AUDIENCE
from datatrust.settings import IssuerSetting, NodeSettings, load_settings
from tests.trust.identity.live import running_identity


def settings_for(tmp_path, **extra) -> NodeSettings:
    return load_settings(
        NodeSettings, environ={}, node_id="health", agency="NHS", data_dir=tmp_path, **extra
    )


def test_without_a_directory_the_settings_name_the_issuers(tmp_path):
    issuer = IssuerSetting(
        issuer="http://127.0.0.1:9", jwks_url="http://127.0.0.1:9/jwks.json", agencies=["health"]
    )
    assert trusted_issuers(settings_for(tmp_path, issuers=[issuer])) == [issuer]


def test_with_a_directory_each_issuer_speaks_only_for_the_agencies_that_list_it(tmp_path):
    init_local_trust(tmp_path, base_port=19400)
    stray = IssuerSetting(
        issuer="http://127.0.0.1:9", jwks_url="http://127.0.0.1:9/jwks.json", agencies=["health"]
    )
    settings = settings_for(
        tmp_path,
        directory=signed_directory_path(tmp_path),
        operator_public_key=operator_public_key_path(tmp_path),
        issuers=[stray],
    )
    assert trusted_issuers(settings) == [
        IssuerSetting(
            issuer="http://127.0.0.1:19404",
            jwks_url="http://127.0.0.1:19404/jwks.json",
            agencies=["council", "health", "public", "social-care", "university"],
        )
    ]


def test_an_agency_without_a_node_is_trusted_only_through_the_issuers_it_lists(tmp_path):
    init_local_trust(tmp_path, base_port=19400)
    document = json.loads((tmp_path / "directory.json").read_text())
    own_idp = {"issuer": "https://idp.uni.test", "jwks_uri": "https://idp.uni.test/jwks"}
    document["agencies"] = [{"agency": "university", "issuers": [own_idp]}]
    key = load_or_create_operator_key(tmp_path)
    signed_directory_path(tmp_path).write_text(
        sign_directory(TrustDirectory.from_document(document), key)
    )
    settings = settings_for(
        tmp_path,
        directory=signed_directory_path(tmp_path),
        operator_public_key=operator_public_key_path(tmp_path),
    )
    assert trusted_issuers(settings) == [
        IssuerSetting(
            issuer="http://127.0.0.1:19404",
            jwks_url="http://127.0.0.1:19404/jwks.json",
            agencies=["council", "health", "social-care"],
        ),
        IssuerSetting(
            issuer="https://idp.uni.test",
            jwks_url="https://idp.uni.test/jwks",
            agencies=["university"],
        ),
    ]


def test_an_issuer_served_over_https_by_a_private_ca_is_trusted_through_its_ca_file(tmp_path):
    """The trust's identity server with a certificate from the trust CA: its JWKS is fetched
    over verified HTTPS when the issuer names that CA, and never without it (fail closed)."""
    pki = init_trust_pki(tmp_path / "trust", ["identity"])
    with running_identity(
        tmp_path / "idp", tls=pki.parts["identity"], audiences=[AUDIENCE]
    ) as live:
        assert live.url.startswith("https://")
        token = live.client_credentials(scope="service-planning")["access_token"]
        issuer = {"issuer": live.url, "jwks_url": f"{live.url}/jwks.json", "agencies": ["council"]}

        with_ca = build_authenticator([IssuerSetting(**issuer, ca_file=pki.ca)], AUDIENCE)
        assert with_ca(f"Bearer {token}").client_id == "analyst-cli"

        without = build_authenticator([IssuerSetting(**issuer)], AUDIENCE)
        with pytest.raises(AuthenticationFailed, match="CERTIFICATE_VERIFY_FAILED"):
            without(f"Bearer {token}")


def test_an_unreadable_issuer_ca_file_is_a_settings_error_naming_it(tmp_path):
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("not a certificate")
    issuer = IssuerSetting(
        issuer="https://idp.test", jwks_url="https://idp.test/jwks", agencies=["x"], ca_file=bad
    )
    with pytest.raises(SettingsError, match=r"not-a-ca\.pem"):
        build_authenticator([issuer], AUDIENCE)


def test_issuers_from_the_directory_trust_the_trust_ca_for_their_jwks(tmp_path):
    init_local_trust(tmp_path)
    settings = settings_for(
        tmp_path,
        directory=signed_directory_path(tmp_path),
        operator_public_key=operator_public_key_path(tmp_path),
        tls_ca=tmp_path / "tls" / "ca.pem",
    )
    issuers = trusted_issuers(settings)
    assert issuers
    assert {issuer.ca_file for issuer in issuers} == {tmp_path / "tls" / "ca.pem"}
