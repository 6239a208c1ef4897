import json

from datatrust._auth import trusted_issuers
from datatrust._network_cli import init_local_trust, signed_directory_path
from datatrust.network import (
    TrustDirectory,
    load_or_create_operator_key,
    operator_public_key_path,
    sign_directory,
)
from datatrust.settings import IssuerSetting, NodeSettings, load_settings


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
