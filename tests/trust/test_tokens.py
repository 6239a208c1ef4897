"""TokenValidator against a real identity server: what it accepts, and every refusal's words."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from datatrust.errors import AuthenticationFailed, PermissionDenied
from datatrust.trust.tokens import (
    IntrospectionConfig,
    IssuerConfig,
    TokenValidator,
    VerifiedRequester,
    require_purpose,
)
from tests.trust.identity.live import COUNCIL_NODE, GATEWAY, LiveIdentity, running_identity

AGENCIES = ("council", "housing", "public")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIdentity]:
    with running_identity(tmp_path_factory.mktemp("tokens") / "identity") as live:
        yield live


def validator_for(live: LiveIdentity, agency=AGENCIES, **options) -> TokenValidator:
    config = IssuerConfig(jwks_url=f"{live.url}/jwks.json", agency=agency, **options)
    return TokenValidator({live.url: config}, audience=COUNCIL_NODE)


@pytest.fixture
def validator(live: LiveIdentity) -> TokenValidator:
    return validator_for(live)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(live: LiveIdentity, **changes) -> dict:
    now = int(time.time())
    base = {
        "iss": live.url,
        "sub": "analyst-cli",
        "aud": [GATEWAY, COUNCIL_NODE],
        "exp": now + 300,
        "iat": now,
        "jti": "token-1",
        "client_id": "analyst-cli",
        "agency": "council",
        "roles": ["analyst"],
        "purposes": ["research"],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def forge(live: LiveIdentity, key: ECKey | None = None, header: dict | None = None, **changes):
    """A token signed with the issuer's own current key unless another key is given."""
    key = key or live.service.keys.signing_key
    head = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid, **(header or {})}
    return jwt.encode(head, claims(live, **changes), key, algorithms=["ES256"])


def unsigned(header: dict, payload: dict, signature: bytes = b"") -> str:
    parts = [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode())]
    return ".".join([*parts, b64(signature)])


def test_a_client_credentials_token_is_accepted_with_its_requester(live, validator):
    token = live.client_credentials(scope="research")["access_token"]
    requester = validator.validate(token)
    assert requester == VerifiedRequester(
        subject="analyst-cli",
        client_id="analyst-cli",
        agency="council",
        roles=("analyst",),
        purposes=("research",),
        issuer=live.url,
        token_id=requester.token_id,
        expires_at=requester.expires_at,
    )
    assert requester.expires_at - time.time() == pytest.approx(600, abs=5)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", requester.token_id)


def test_the_same_token_is_accepted_by_the_gateway_audience_too(live):
    token = live.client_credentials()["access_token"]
    config = IssuerConfig(jwks_url=f"{live.url}/jwks.json", agency="council")
    gateway = TokenValidator({live.url: config}, audience=GATEWAY)
    assert gateway.validate(token).purposes == ("service-planning", "commissioning", "research")


def refusal(validator: TokenValidator, token: str) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        validator.validate(token)
    assert caught.value.code == "UNAUTHENTICATED"
    assert caught.value.status_hint == 401
    assert token not in caught.value.message or not token
    return caught.value.message


def test_no_token_is_refused(validator):
    assert refusal(validator, "") == (
        "no access token: send the header 'Authorization: Bearer <access token>'"
    )
    with pytest.raises(AuthenticationFailed, match=r"^no access token: send the header"):
        validator.validate_header(None)
    with pytest.raises(
        AuthenticationFailed, match=r"^the Authorization header is not 'Bearer <access token>'$"
    ):
        validator.validate_header("Basic YWxhZGRpbjpvcGVuc2VzYW1l")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (
            "not-a-jwt",
            "it is not three base64url parts separated by dots (a JWS compact serialization)",
        ),
        (
            "a.b.c.d",
            "it is not three base64url parts separated by dots (a JWS compact serialization)",
        ),
        (
            "abc.def.ghi\n",
            "it is not three base64url parts separated by dots (a JWS compact serialization)",
        ),
        (
            "e30.e30.sig$",
            "it is not three base64url parts separated by dots (a JWS compact serialization)",
        ),
        ("bm90anNvbg.e30.c2ln", "its header is not a base64url JSON object"),
        (f"{b64(b'[1]')}.e30.c2ln", "its header is not a base64url JSON object"),
        (f"e30.{b64(b'nope')}.c2ln", "its claims set is not a base64url JSON object"),
        ("x" * 9000, "it is longer than 8192 bytes"),
    ],
)
def test_a_malformed_token_is_refused(validator, token, message):
    assert refusal(validator, token) == f"the access token is malformed: {message}"


def test_alg_none_is_refused(live, validator):
    token = unsigned({"alg": "none", "typ": "at+jwt", "kid": "k1"}, claims(live))
    assert refusal(validator, token) == (
        f"the access token is signed with 'none', but issuer '{live.url}' is pinned to ES256"
    )


def test_hs256_signed_with_the_issuers_public_key_as_secret_is_refused(live, validator):
    public = live.service.keys.signing_key
    secret = public.as_pem(private=False)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": public.kid}
    signing_input = unsigned(header, claims(live)).rsplit(".", 1)[0]
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64(signature)}"
    assert refusal(validator, token) == (
        f"the access token is signed with 'HS256', but issuer '{live.url}' is pinned to ES256"
    )


def test_a_token_signed_by_an_unknown_key_is_refused(live, validator):
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    assert refusal(validator, forge(live, stranger)) == (
        f"the access token is signed with key '{stranger.kid}', which issuer "
        f"'{live.url}' does not publish"
    )


def test_a_token_claiming_a_published_kid_but_signed_by_another_key_is_refused(live, validator):
    stranger = ECKey.generate_key("P-256")
    kid = live.service.keys.signing_key.kid
    token = forge(live, stranger, header={"kid": kid})
    assert refusal(validator, token) == (
        f"the access token's signature does not verify with key '{kid}' of issuer '{live.url}'"
    )


def test_a_token_from_an_unknown_issuer_is_refused(live, validator):
    token = forge(live, iss="https://idp.elsewhere.example")
    assert refusal(validator, token) == (
        "the access token's issuer 'https://idp.elsewhere.example' is not one this trust accepts"
    )


def test_an_expired_token_is_refused(live, validator):
    token = forge(live, exp=int(time.time()) - 100, iat=int(time.time()) - 700)
    message = refusal(validator, token)
    assert re.fullmatch(
        r"the access token expired at \S+ \((99|100|101) seconds ago\): get a new one", message
    )


def test_an_expiry_within_the_leeway_is_accepted(live, validator):
    token = forge(live, exp=int(time.time()) - 10)
    assert validator.validate(token).subject == "analyst-cli"


def test_a_not_yet_valid_token_is_refused(live, validator):
    not_before = int(time.time()) + 120
    message = refusal(validator, forge(live, nbf=not_before))
    assert message == f"the access token is not valid before {_iso(not_before)}"


def test_a_token_issued_in_the_future_is_refused(live, validator):
    issued = int(time.time()) + 120
    assert refusal(validator, forge(live, iat=issued)) == (
        f"the access token says it was issued at {_iso(issued)}, in the future: the issuer's "
        "clock or ours is wrong"
    )


def test_a_token_for_another_audience_is_refused(live, validator):
    token = forge(live, aud=["https://health.trust.test"])
    assert refusal(validator, token) == (
        f"the access token is for audience ['https://health.trust.test'], not '{COUNCIL_NODE}'"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jku", "https://attacker.example/jwks.json"),
        ("x5u", "https://attacker.example/cert.pem"),
        ("jwk", {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}),
        ("x5c", ["MIIB"]),
    ],
)
def test_a_token_that_names_or_carries_its_own_key_is_refused(live, validator, name, value):
    header = {"alg": "ES256", "typ": "at+jwt", "kid": "k1", name: value}
    token = unsigned(header, claims(live), b"s" * 64)
    assert refusal(validator, token) == (
        f"the access token's header carries '{name}': keys are taken only from the issuer's "
        "published JWKS, never from the token"
    )


@pytest.mark.parametrize(
    "kid", ["../../etc/passwd", "k1' OR '1'='1", "k1;DROP TABLE keys", "k" * 65, "", 7, "k1\n"]
)
def test_a_kid_with_path_or_sql_characters_is_refused_before_any_lookup(live, kid):
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"keys": []})

    config = IssuerConfig(jwks_url=f"{live.url}/jwks.json", agency="council")
    validator = TokenValidator(
        {live.url: config},
        COUNCIL_NODE,
        http_client=httpx.Client(transport=httpx.MockTransport(record)),
    )
    token = unsigned({"alg": "ES256", "typ": "at+jwt", "kid": kid}, claims(live), b"s" * 64)
    assert refusal(validator, token) == (
        "the access token's key id (kid) is not 1 to 64 letters, digits, '-' or '_'"
    )
    assert requests == []


def test_an_id_token_is_not_accepted_as_an_access_token(live, validator):
    token = forge(live, header={"typ": "JWT"})
    assert refusal(validator, token) == (
        "the token's type (typ) is 'JWT', not 'at+jwt': only access tokens (RFC 9068) are "
        "accepted, never ID tokens or other JWTs"
    )


def test_a_purpose_outside_the_tokens_purposes_is_forbidden(live, validator):
    requester = validator.validate(live.client_credentials(scope="research")["access_token"])
    require_purpose(requester, "research")
    with pytest.raises(PermissionDenied) as caught:
        require_purpose(requester, "direct-care")
    assert caught.value.message == (
        "purpose 'direct-care' is not among the purposes this access token allows (research): "
        "ask for a token for that purpose"
    )
    assert (caught.value.code, caught.value.status_hint) == ("FORBIDDEN", 403)


def test_a_revoked_token_is_refused_where_introspection_is_configured(live):
    introspection = IntrospectionConfig(
        url=f"{live.url}/introspect",
        client_id="nodes",
        client_secret=live.accounts.client_secrets["nodes"],
    )
    validator = validator_for(live, introspection=introspection)
    token = live.client_credentials()["access_token"]
    assert validator.validate(token).client_id == "analyst-cli"
    response = httpx.post(
        f"{live.url}/revoke",
        data={"token": token, "token_type_hint": "access_token"},
        auth=("analyst-cli", live.accounts.client_secrets["analyst-cli"]),
    )
    assert response.status_code == 200
    assert refusal(validator, token) == (
        f"the access token has been revoked (introspection at {live.url}/introspect says it "
        "is not active)"
    )
    assert "secret" not in repr(introspection)


def test_a_token_from_an_issuer_listed_for_another_agency_is_refused(live):
    validator = validator_for(live, agency="health")
    token = live.client_credentials()["access_token"]
    assert refusal(validator, token) == (
        f"the access token claims agency 'council', but issuer '{live.url}' may speak only "
        "for health"
    )


def test_an_unknown_kid_refreshes_the_jwks_at_most_once_per_interval(live):
    fetches: list[str] = []
    real = httpx.Client()

    def counting(request: httpx.Request) -> httpx.Response:
        fetches.append(str(request.url))
        answer = real.get(str(request.url))
        return httpx.Response(answer.status_code, content=answer.content)

    config = IssuerConfig(jwks_url=f"{live.url}/jwks.json", agency="council")
    validator = TokenValidator(
        {live.url: config},
        COUNCIL_NODE,
        http_client=httpx.Client(transport=httpx.MockTransport(counting)),
    )
    validator.validate(forge(live))
    for _ in range(5):
        forged = forge(live, ECKey.generate_key("P-256", auto_kid=True))
        with pytest.raises(AuthenticationFailed, match=r"which issuer .* does not publish"):
            validator.validate(forged)
    assert fetches == [f"{live.url}/jwks.json"]


def test_rotation_accepts_old_and_new_keys_then_refuses_the_withdrawn_one(tmp_path: Path):
    with running_identity(tmp_path / "identity") as live:
        validator = validator_for(live)
        keys = live.service.keys
        old_token = live.client_credentials()["access_token"]
        old_kid = keys.signing_key.kid
        next_kid = next(kid for kid, state in keys.states().items() if state == "next")
        assert validator.validate(old_token).client_id == "analyst-cli"

        assert keys.rotate() == next_kid
        new_token = live.client_credentials()["access_token"]
        assert json.loads(base64.urlsafe_b64decode(new_token.split(".")[0] + "=="))["kid"] == (
            next_kid
        )
        assert validator.validate(new_token).client_id == "analyst-cli"
        assert validator.validate(old_token).client_id == "analyst-cli"
        assert keys.states()[old_kid] == "retired"

        assert keys.withdraw_expired(now=time.time() + 3600) == [old_kid]
        validator.refresh(live.url)
        assert refusal(validator, old_token) == (
            f"the access token is signed with key '{old_kid}', which issuer '{live.url}' "
            "does not publish"
        )
        assert validator.validate(new_token).client_id == "analyst-cli"


def test_tokens_keep_validating_with_cached_keys_while_the_identity_server_is_down(tmp_path):
    with running_identity(tmp_path / "identity") as live:
        validator = validator_for(live)
        token = live.client_credentials()["access_token"]
        assert validator.validate(token).client_id == "analyst-cli"
        live.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{live.url}/jwks.json")
        assert validator.validate(token).client_id == "analyst-cli"


def test_a_validator_that_never_reached_the_issuer_says_so(tmp_path):
    with running_identity(tmp_path / "identity") as live:
        token = live.client_credentials()["access_token"]
        validator = validator_for(live)
        live.stop()
        message = refusal(validator, token)
    assert message.startswith(
        f"cannot fetch the signing keys of issuer '{live.url}' from {live.url}/jwks.json: "
        "ConnectError"
    )


def _iso(timestamp: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
