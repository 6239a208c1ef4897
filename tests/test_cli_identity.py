"""``datatrust identity``: accounts and key rotation against a running identity server.

The server runs in this process (``running_identity``) on ``<data dir>/identity``, where
``datatrust serve identity`` keeps it; the commands run as separate processes on the same
data dir, as an operator runs them beside a live server.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from datatrust._auth import build_authenticator
from datatrust.errors import AuthenticationFailed
from datatrust.settings import GATEWAY_AUDIENCE, IssuerSetting
from tests.trust.identity.live import running_identity


def datatrust(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "datatrust", "identity", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


@pytest.fixture
def live(tmp_path):
    config = tmp_path / "config" / "identity.toml"  # as `datatrust up` or a deployment has it
    config.parent.mkdir()
    config.write_text(f'data_dir = "{tmp_path}"\naudiences = ["{GATEWAY_AUDIENCE}"]\n')
    with running_identity(tmp_path / "identity", audiences=[GATEWAY_AUDIENCE]) as server:
        yield server


def unverified_kid(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def test_a_new_partner_client_gets_its_secret_once_and_tokens_with_it(live, tmp_path):
    added = datatrust(
        tmp_path, "add-client", "housing-etl", "--agency", "housing", "--purpose",
        "service-planning",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert len(secret) >= 40
    assert "shown this once" in added.stderr
    assert secret not in (tmp_path / "identity" / "identity.db").read_bytes().decode("latin-1")
    token = httpx.post(
        f"{live.url}/token",
        data={"grant_type": "client_credentials", "scope": "service-planning"},
        auth=("housing-etl", secret),
    )
    assert token.status_code == 200, token.text
    refused = httpx.post(
        f"{live.url}/token",
        data={"grant_type": "client_credentials", "scope": "research"},
        auth=("housing-etl", secret),
    )
    assert refused.status_code == 400, refused.text  # a purpose it was not given


def test_a_client_with_its_own_keys_gets_no_secret(live, tmp_path):
    key = ECKey.generate_key("P-256", auto_kid=True)
    jwks = tmp_path / "client-jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    added = datatrust(
        tmp_path, "add-client", "uni-extract", "--agency", "university", "--purpose", "research",
        "--jwks", str(jwks),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout == ""
    assert "own keys" in added.stderr
    row = live.service.store.client("uni-extract")
    assert row["auth_method"] == "private_key_jwt"


def test_a_bad_jwks_file_is_named_and_nothing_is_registered(live, tmp_path):
    bad = tmp_path / "nope.json"
    bad.write_text("[1, 2]")
    added = datatrust(
        tmp_path, "add-client", "x-system", "--agency", "housing", "--purpose", "research",
        "--jwks", str(bad),
    )  # fmt: skip
    assert added.returncode == 2
    assert "nope.json" in added.stderr
    assert live.service.store.client("x-system") is None


def test_a_new_person_signs_in_with_the_password_shown_once(live, tmp_path):
    added = datatrust(
        tmp_path, "add-person", "a.analyst", "--name", "A Analyst", "--agency", "council",
        "--role", "analyst", "--purpose", "service-planning",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    password = added.stdout.strip()
    person = live.service.authenticate_person("a.analyst", password)
    assert person is not None
    assert live.service.authenticate_person("a.analyst", password + "x") is None


def test_rotating_keys_beside_a_running_server_changes_its_signing_key_without_a_gap(
    live, tmp_path
):
    before = live.client_credentials(scope="service-planning")["access_token"]
    published = {key["kid"] for key in httpx.get(f"{live.url}/jwks.json").json()["keys"]}
    issuer = IssuerSetting(
        issuer=live.url, jwks_url=f"{live.url}/jwks.json", agencies=["council", "health"]
    )
    authenticate = build_authenticator([issuer], GATEWAY_AUDIENCE)
    authenticate(f"Bearer {before}")  # caches the JWKS as it was

    rotated = datatrust(tmp_path, "rotate-keys")
    assert rotated.returncode == 0, rotated.stderr
    after = live.client_credentials(scope="service-planning")["access_token"]
    old, new = unverified_kid(before), unverified_kid(after)
    assert old != new
    assert new in published  # the next key was published before it signed anything
    assert f"signing now with key {new}" in rotated.stderr
    states = live.service.keys.states()
    assert (states[old], states[new]) == ("retired", "current")
    assert list(states.values()).count("next") == 1
    jwks = {key["kid"] for key in httpx.get(f"{live.url}/jwks.json").json()["keys"]}
    assert jwks == set(states)
    # Both tokens verify: the old one with a retired key, the new one with a key the
    # validator cached before the rotation.
    assert authenticate(f"Bearer {before}").client_id == "analyst-cli"
    assert authenticate(f"Bearer {after}").client_id == "analyst-cli"
    listed = datatrust(tmp_path, "keys")
    assert listed.returncode == 0, listed.stderr
    assert new in listed.stdout


def test_a_token_signed_by_a_key_the_ring_never_had_is_refused(live):
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    forged = jwt.encode({"alg": "ES256", "kid": stranger.kid}, {"sub": "x"}, stranger)
    issuer = IssuerSetting(issuer=live.url, jwks_url=f"{live.url}/jwks.json", agencies=["x"])
    with pytest.raises(AuthenticationFailed):
        build_authenticator([issuer], GATEWAY_AUDIENCE)(f"Bearer {forged}")
