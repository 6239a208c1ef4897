"""The identity server's flows end to end over real HTTP, and its tokens accepted by nodes."""

from __future__ import annotations

import stat
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from datatrust.trust.tokens import IssuerConfig, TokenValidator
from tests.trust.identity.live import (
    COUNCIL_NODE,
    GATEWAY,
    PARTNER_KEY_CLIENT,
    REDIRECT_URI,
    pkce_pair,
    sign_in,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def node(identity) -> TokenValidator:
    config = IssuerConfig(
        jwks_url=f"{identity.url}/jwks.json", agency=("council", "housing", "public")
    )
    return TokenValidator({identity.url: config}, audience=COUNCIL_NODE)


def exchange(identity, code: str, verifier: str, **extra) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": "portal",
        "code_verifier": verifier,
        **extra,
    }
    return httpx.post(f"{identity.url}/token", data=data)


def code_from(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["xyz"]
    return query["code"][0]


def test_discovery_and_jwks_describe_the_server(identity):
    document = httpx.get(f"{identity.url}/.well-known/openid-configuration").json()
    assert document["issuer"] == identity.url
    assert document["jwks_uri"] == f"{identity.url}/jwks.json"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "private_key_jwt",
        "none",
    ]
    keys = httpx.get(document["jwks_uri"]).json()["keys"]
    assert sorted(identity.service.keys.states().values()) == ["current", "next"]
    assert {k["kid"] for k in keys} == set(identity.service.keys.states())
    assert all(set(k) == {"kty", "crv", "x", "y", "kid", "use", "alg"} for k in keys)


def test_keys_and_state_are_readable_only_by_their_owner(identity):
    key_dir = identity.service.settings.key_dir
    for path in [*key_dir.iterdir(), identity.service.settings.database_path]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(identity.service.settings.data_dir.stat().st_mode) == 0o700


def test_client_credentials_with_client_secret_basic(identity):
    token = identity.client_credentials(scope="service-planning")
    assert set(token) == {"token_type", "access_token", "expires_in", "scope"}
    assert (token["token_type"], token["expires_in"], token["scope"]) == (
        "Bearer",
        600,
        "service-planning",
    )
    requester = node(identity).validate(token["access_token"])
    assert (requester.agency, requester.purposes) == ("council", ("service-planning",))
    claims = jwt.decode(
        token["access_token"], KeySet.import_key_set(httpx.get(f"{identity.url}/jwks.json").json())
    ).claims
    assert claims["aud"] == [GATEWAY, COUNCIL_NODE]
    assert set(claims) == {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
        "agency",
        "roles",
        "purposes",
    }


def test_client_credentials_with_a_wrong_secret_is_refused(identity):
    response = httpx.post(
        f"{identity.url}/token",
        data={"grant_type": "client_credentials"},
        auth=("analyst-cli", "not-the-secret"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_client_credentials_for_a_purpose_the_client_may_not_use_is_refused(identity):
    response = httpx.post(
        f"{identity.url}/token",
        data={"grant_type": "client_credentials", "scope": "direct-care"},
        auth=("analyst-cli", identity.accounts.client_secrets["analyst-cli"]),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_scope",
        "error_description": "client 'analyst-cli' may not ask for direct-care; it may ask "
        "for: service-planning commissioning research",
    }


def test_client_credentials_with_private_key_jwt(identity):
    response = httpx.post(
        f"{identity.url}/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": identity.client_assertion(),
        },
    )
    assert response.status_code == 200, response.text
    requester = node(identity).validate(response.json()["access_token"])
    assert (requester.subject, requester.agency, requester.purposes) == (
        PARTNER_KEY_CLIENT,
        "housing",
        ("service-planning",),
    )


def test_a_replayed_or_misaddressed_client_assertion_is_refused(identity):
    assertion = identity.client_assertion()
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
    first = httpx.post(f"{identity.url}/token", data={**form, "client_assertion": assertion})
    assert first.status_code == 200
    again = httpx.post(f"{identity.url}/token", data={**form, "client_assertion": assertion})
    assert again.status_code == 400
    assert again.json() == {
        "error": "invalid_client",
        "error_description": "JWT ID is used before.",
    }
    elsewhere = identity.client_assertion(audience="https://other.example/token")
    wrong = httpx.post(f"{identity.url}/token", data={**form, "client_assertion": elsewhere})
    assert wrong.json()["error"] == "invalid_client"


def test_authorization_code_with_pkce_signs_a_person_in(identity):
    verifier, challenge = pkce_pair()
    code = code_from(sign_in(identity, challenge=challenge))
    response = exchange(identity, code, verifier)
    assert response.status_code == 200, response.text
    token = response.json()
    assert set(token) == {
        "token_type",
        "access_token",
        "expires_in",
        "scope",
        "refresh_token",
        "id_token",
    }
    requester = node(identity).validate(token["access_token"])
    assert (requester.client_id, requester.agency, requester.roles, requester.purposes) == (
        "portal",
        "council",
        ("analyst",),
        ("research",),
    )
    again = exchange(identity, code, verifier)
    assert again.json()["error"] == "invalid_grant"


def test_a_citizens_id_token_carries_the_nhs_number(identity):
    verifier, challenge = pkce_pair()
    code = code_from(
        sign_in(identity, challenge=challenge, username="citizen", scope="openid profile")
    )
    token = exchange(identity, code, verifier).json()
    keys = KeySet.import_key_set(httpx.get(f"{identity.url}/jwks.json").json())
    id_token = jwt.decode(token["id_token"], keys).claims
    assert (id_token["iss"], id_token["aud"], id_token["nhs_number"]) == (
        identity.url,
        ["portal"],
        "9990001006",
    )
    assert node(identity).validate(token["access_token"]).purposes == ()


def test_a_wrong_code_verifier_is_refused(identity):
    _, challenge = pkce_pair()
    code = code_from(sign_in(identity, challenge=challenge))
    other_verifier, _ = pkce_pair()
    response = exchange(identity, code, other_verifier)
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Code challenge failed.",
    }


@pytest.mark.parametrize(
    ("params", "description"),
    [
        (
            {"code_challenge_method": "plain"},
            "code_challenge_method must be S256 (plain is refused)",
        ),
        (
            {"code_challenge": None, "code_challenge_method": None},
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        ),
    ],
)
def test_plain_or_missing_pkce_is_refused(identity, params, description):
    _, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": "portal",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **params,
    }
    query = {k: v for k, v in query.items() if v is not None}
    response = httpx.get(f"{identity.url}/authorize", params=query)
    assert response.status_code == 302
    error = parse_qs(urlsplit(response.headers["location"]).query)
    assert (error["error"], error["error_description"]) == (["invalid_request"], [description])


def test_a_redirect_uri_that_is_not_an_exact_match_is_refused_without_redirecting(identity):
    _, challenge = pkce_pair()
    response = httpx.get(
        f"{identity.url}/authorize",
        params={
            "response_type": "code",
            "client_id": "portal",
            "redirect_uri": REDIRECT_URI + "/../evil",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "redirect_uri is not registered for client 'portal' (exact match)",
    }


def test_the_login_form_refuses_a_wrong_password_and_a_missing_csrf_token(identity):
    _, challenge = pkce_pair()
    with httpx.Client(base_url=identity.url) as browser:
        params = {
            "response_type": "code",
            "client_id": "portal",
            "redirect_uri": REDIRECT_URI,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        page = browser.get("/authorize", params=params)
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        wrong = browser.post(
            "/authorize",
            data={"csrf_token": csrf, "oauth": "", "username": "analyst", "password": "guess"},
        )
        assert wrong.status_code == 401
        assert "Wrong username or password." in wrong.text
        forged = browser.post(
            "/authorize",
            data={
                "csrf_token": "forged",
                "oauth": "",
                "username": "analyst",
                "password": identity.accounts.passwords["analyst"],
            },
        )
        assert forged.status_code == 400
        assert "The form expired or was not sent by this page" in forged.text


def test_refresh_rotates_and_reuse_revokes_the_whole_family(identity):
    verifier, challenge = pkce_pair()
    first = exchange(identity, code_from(sign_in(identity, challenge=challenge)), verifier).json()
    form = {"grant_type": "refresh_token", "client_id": "portal"}
    second = httpx.post(
        f"{identity.url}/token", data={**form, "refresh_token": first["refresh_token"]}
    ).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert node(identity).validate(second["access_token"]).client_id == "portal"

    reuse = httpx.post(
        f"{identity.url}/token", data={**form, "refresh_token": first["refresh_token"]}
    )
    assert reuse.status_code == 400
    assert reuse.json() == {
        "error": "invalid_grant",
        "error_description": "the refresh token was already used, so every token of this "
        "sign-in is now revoked: sign in again",
    }
    latest = httpx.post(
        f"{identity.url}/token", data={**form, "refresh_token": second["refresh_token"]}
    )
    assert latest.json() == {
        "error": "invalid_grant",
        "error_description": "the refresh token has been revoked: sign in again",
    }
    introspected = httpx.post(
        f"{identity.url}/introspect",
        data={"token": second["access_token"]},
        auth=("nodes", identity.accounts.client_secrets["nodes"]),
    )
    assert introspected.json() == {"active": False}


def test_introspection_describes_an_active_token_and_revocation_ends_it(identity):
    token = identity.client_credentials(scope="research")["access_token"]
    nodes = ("nodes", identity.accounts.client_secrets["nodes"])
    body = httpx.post(f"{identity.url}/introspect", data={"token": token}, auth=nodes).json()
    assert body == {
        "active": True,
        "client_id": "analyst-cli",
        "scope": "research",
        "token_type": "Bearer",
        "iat": body["iat"],
        "exp": body["iat"] + 600,
        "iss": identity.url,
        "sub": "analyst-cli",
        "aud": [GATEWAY, COUNCIL_NODE],
        "jti": body["jti"],
        "agency": "council",
        "roles": ["analyst"],
        "purposes": ["research"],
    }
    revoked = httpx.post(
        f"{identity.url}/revoke",
        data={"token": token},
        auth=("analyst-cli", identity.accounts.client_secrets["analyst-cli"]),
    )
    assert (revoked.status_code, revoked.json()) == (200, {})
    after = httpx.post(f"{identity.url}/introspect", data={"token": token}, auth=nodes).json()
    assert after == {"active": False}


def test_a_client_cannot_introspect_another_clients_token(identity):
    token = identity.client_credentials()["access_token"]
    response = httpx.post(
        f"{identity.url}/introspect",
        data={"token": token},
        auth=(PARTNER_KEY_CLIENT, "no-secret"),
    )
    assert response.status_code == 401
