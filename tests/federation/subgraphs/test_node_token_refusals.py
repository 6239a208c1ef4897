"""Every kind of bad access token is refused at a node itself, with 401/403 and an audit entry.

The node never relies on the gateway's check: each token below is sent straight to the
health node's subgraph, as an attacker on the trust's network could.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from joserfc.jwk import ECKey
from sqlalchemy import select

from datatrust.node import create_node_app
from datatrust.settings import NodeSettings, load_settings, node_audience
from datatrust.store import AuditEvent, create_store_engine
from tests.asgi_client import app_client
from tests.trust.test_tokens import claims, forge, unsigned
from tests.trust_identity import trust_identity

QUERY = (
    'query { _entities(representations: [{__typename: "Area", code: "E01009522"}]) '
    "{ ... on Area { encounterCount } } }"
)
HEALTH = node_audience("health")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with trust_identity(tmp_path_factory.mktemp("identity")) as identity:
        data_dir = tmp_path_factory.mktemp("health")
        settings = load_settings(
            NodeSettings,
            environ={},
            node_id="health",
            agency="NHS",
            data_dir=data_dir,
            issuers=identity.issuers,
        )
        with app_client(create_node_app(settings)) as client:
            client.live = identity.live
            client.engine = create_store_engine(settings.effective_database_url)
            yield client
            client.engine.dispose()


def hs256_with_public_key(live) -> str:
    public = live.service.keys.signing_key
    header = {"alg": "HS256", "typ": "at+jwt", "kid": public.kid}
    signing_input = unsigned(header, claims(live, aud=[HEALTH])).rsplit(".", 1)[0]
    signature = hmac.new(
        public.as_pem(private=False), signing_input.encode(), hashlib.sha256
    ).digest()
    return f"{signing_input}.{unsigned({}, {}, signature).rsplit('.', 1)[1]}"


def agency_mismatch(live) -> str:
    return forge(live, aud=[HEALTH], agency="a-foreign-agency")


TOKENS = {
    "malformed": lambda live: "not-a-jwt",
    "alg none": lambda live: unsigned(
        {"alg": "none", "typ": "at+jwt", "kid": "k1"}, claims(live, aud=[HEALTH])
    ),
    "hs256 with the public key": hs256_with_public_key,
    "unknown key": lambda live: forge(
        live, ECKey.generate_key("P-256", auto_kid=True), aud=[HEALTH]
    ),
    "unknown issuer": lambda live: forge(live, iss="https://idp.elsewhere.example", aud=[HEALTH]),
    "expired": lambda live: forge(
        live, aud=[HEALTH], exp=int(time.time()) - 100, iat=int(time.time()) - 700
    ),
    "not yet valid": lambda live: forge(live, aud=[HEALTH], nbf=int(time.time()) + 600),
    "wrong audience": lambda live: forge(live, aud=["urn:datatrust:node:council"]),
    "jku header": lambda live: unsigned(
        {"alg": "ES256", "typ": "at+jwt", "kid": "k1", "jku": "https://attacker.example/k"},
        claims(live, aud=[HEALTH]),
        b"s" * 64,
    ),
    "x5u header": lambda live: unsigned(
        {"alg": "ES256", "typ": "at+jwt", "kid": "k1", "x5u": "https://attacker.example/c"},
        claims(live, aud=[HEALTH]),
        b"s" * 64,
    ),
    "embedded jwk": lambda live: unsigned(
        {"alg": "ES256", "typ": "at+jwt", "kid": "k1", "jwk": {"kty": "EC"}},
        claims(live, aud=[HEALTH]),
        b"s" * 64,
    ),
    "kid with path characters": lambda live: forge(
        live, header={"kid": "../../etc/passwd"}, aud=[HEALTH]
    ),
    "kid with sql characters": lambda live: forge(
        live, header={"kid": "k1' OR '1'='1"}, aud=[HEALTH]
    ),
    "agency the issuer does not speak for": agency_mismatch,
}


@pytest.mark.parametrize("kind", sorted(TOKENS))
def test_a_bad_token_is_refused_at_the_node_with_401_and_audited(node, kind):
    token = TOKENS[kind](node.live)
    with node.engine.connect() as connection:
        before = len(connection.execute(select(AuditEvent.seq)).all())
    response = node.post(
        "/graphql",
        json={"query": QUERY},
        headers={"Purpose": "research", "Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert token not in body["errors"][0]["message"]
    with node.engine.connect() as connection:
        rows = connection.execute(
            select(AuditEvent.outcome, AuditEvent.code, AuditEvent.requester).order_by(
                AuditEvent.seq
            )
        ).all()[before:]
    assert [tuple(r) for r in rows] == [("deny", "UNAUTHENTICATED", "unauthenticated")]


def test_a_valid_token_for_the_node_is_accepted(node):
    token = forge(node.live, aud=[HEALTH])
    response = node.post(
        "/graphql",
        json={"query": QUERY},
        headers={"Purpose": "research", "Authorization": f"Bearer {token}"},
    )
    # The token is valid; the trust's policy then refuses research (403, not 401).
    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"


def test_a_client_over_its_share_gets_429_with_retry_after_and_an_audit_entry(tmp_path):
    with trust_identity(tmp_path / "identity") as identity:
        settings = load_settings(
            NodeSettings,
            environ={},
            node_id="health",
            agency="NHS",
            data_dir=tmp_path / "health",
            issuers=identity.issuers,
            rate_limit_per_minute=1,
            rate_limit_burst=2,
        )
        headers = identity.headers("service-planning")
        with app_client(create_node_app(settings)) as client:
            statuses = [
                client.post("/graphql", json={"query": QUERY}, headers=headers).status_code
                for _ in range(2)
            ]
            refused = client.post("/graphql", json={"query": QUERY}, headers=headers)
    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    engine = create_store_engine(settings.effective_database_url)
    with engine.connect() as connection:
        last = connection.execute(
            select(AuditEvent.outcome, AuditEvent.code).order_by(AuditEvent.seq.desc()).limit(1)
        ).one()
    engine.dispose()
    assert tuple(last) == ("deny", "RATE_LIMITED")


def test_a_401_names_the_bearer_scheme(node):
    response = node.post("/graphql", json={"query": QUERY}, headers={"Purpose": "research"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="datatrust"'


def test_a_persons_token_from_authorization_code_with_pkce_is_accepted_at_the_node(node):
    from urllib.parse import parse_qs, urlsplit

    import httpx

    from tests.trust.identity.live import REDIRECT_URI, pkce_pair, sign_in

    verifier, challenge = pkce_pair()
    redirect = sign_in(node.live, challenge=challenge, scope="openid service-planning")
    code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
    tokens = httpx.post(
        f"{node.live.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": "portal",
            "code_verifier": verifier,
        },
    ).json()
    response = node.post(
        "/graphql",
        json={"query": QUERY},
        headers={
            "Purpose": "service-planning",
            "Authorization": f"Bearer {tokens['access_token']}",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["_entities"][0]["encounterCount"] >= 0
