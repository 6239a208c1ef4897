"""One running trust for the fuzz tests, with real tokens, refused tokens and the schemas.

The trust is ``datatrust up`` as a subprocess (gateway and three nodes over real HTTP and
mutual TLS): the demo trust of tests/conftest.py, which fuzzing only asks. The schemas
fuzzed are the ones the parts serve: the gateway's composed API schema by introspection
(with a real token), each node's subgraph by ``_service { sdl }``.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from graphql import build_client_schema, get_introspection_query
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from joserfc import jwt
from joserfc.jwk import ECKey

from tests._trust import Trust, token, tool_tls
from tests.fuzz._harness import NODES, Ledgers, Target
from tests.fuzz._strategies import Credentials, Samples, schema_from_sdl

EXAMPLES_PER_TARGET = 150
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "hypothesis"

settings.register_profile(
    "fuzz",
    max_examples=EXAMPLES_PER_TARGET,
    deadline=None,
    derandomize=os.environ.get("CI") == "true",  # CI: the same examples every run
    database=None if os.environ.get("CI") == "true" else DirectoryBasedExampleDatabase(ARTIFACTS),
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
FUZZ = settings.get_profile("fuzz")

DEMO_CLIENTS = {
    "service-planning": "analyst-cli",
    "research": "research-cli",
    "direct-care": "care-cli",
}


class FuzzTrust:
    """The running trust and what the fuzz tests need of it."""

    def __init__(self, trust: Trust) -> None:
        self.trust = trust
        self.run = trust.run
        self.ledgers = Ledgers(trust.data_dir)
        with ThreadPoolExecutor(len(DEMO_CLIENTS)) as pool:  # each is a CLI run: at once
            tokens = pool.map(lambda item: (item[0], token(trust, *item)), DEMO_CLIENTS.items())
            self.credentials = Credentials(by_purpose=dict(tokens), refused={})
        self.credentials.refused.update(refused_tokens(trust, self.credentials.by_purpose))
        self.samples = samples(trust.data_dir)
        self.node_client = httpx.Client(verify=tool_tls(self.run))
        self.gateway_client = httpx.Client()
        node_schemas = {
            node: schema_from_sdl(
                self.node_client.post(url, json={"query": "{ _service { sdl } }"}).json()["data"][
                    "_service"
                ]["sdl"]
            )
            for node, url in self.run["nodes"].items()
        }
        owners: dict[tuple[str, str], set[str]] = {}
        for node, schema in node_schemas.items():
            for type_name, type_ in schema.type_map.items():
                for field_name in getattr(type_, "fields", {}) or {}:
                    owners.setdefault((type_name, field_name), set()).add(node)
        frozen = {pair: frozenset(nodes) for pair, nodes in owners.items()}
        self.targets = {
            node: Target(node, url, node_schemas[node], frozen)
            for node, url in self.run["nodes"].items()
        }
        self.targets["gateway"] = Target(
            "gateway", self.run["gateway"], self.gateway_schema(), frozen
        )

    def gateway_schema(self):
        answer = self.gateway_client.post(
            self.run["gateway"],
            json={"query": get_introspection_query()},
            headers={
                "Purpose": "service-planning",
                "Authorization": f"Bearer {self.credentials.by_purpose['service-planning']}",
            },
            timeout=30,
        ).json()
        return build_client_schema(answer["data"])

    def client_for(self, target: Target) -> httpx.Client:
        return self.gateway_client if target.is_gateway else self.node_client

    def close(self) -> None:
        self.node_client.close()
        self.gateway_client.close()


def refused_tokens(trust: Trust, real: dict[str, str]) -> dict[str, str]:
    """Tokens the trust must refuse: expired (signed by its own issuer key), re-signed,
    tampered, signed by a stranger's key, and unsigned."""
    sample = real["service-planning"]
    header_part, payload_part, signature = sample.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload_part + "=" * (-len(payload_part) % 4)))
    now = int(time.time())
    keys = trust.data_dir / "identity" / "keys"
    current = next(
        k["kid"]
        for k in json.loads((keys / "keyring.json").read_text())["keys"]
        if k["state"] == "current"
    )
    issuer = ECKey.import_key((keys / f"{current}.pem").read_text())
    header = {"alg": "ES256", "typ": "at+jwt", "kid": current}
    expired = jwt.encode(header, {**claims, "exp": now - 3600, "iat": now - 7200}, issuer)
    stranger = ECKey.generate_key("P-256")
    broader = {
        **claims,
        "purposes": ["service-planning", "research", "direct-care", "safeguarding"],
    }
    tampered_payload = base64.urlsafe_b64encode(json.dumps(broader).encode()).rstrip(b"=").decode()
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    return {
        "expired": expired,
        "wrong signature": f"{header_part}.{payload_part}.{flipped}",
        "tampered claims": f"{header_part}.{tampered_payload}.{signature}",
        "stranger's key": jwt.encode(header, claims, stranger),
        "unsigned": f"{header_part}.{payload_part}.",
    }


def samples(data_dir: Path) -> Samples:
    """Real area codes and pseudonyms from the nodes' stores, so lookups can find records."""
    with sqlite3.connect(data_dir / "health.db") as db:
        pseudonyms = [r[0] for r in db.execute("select pseudonym from person limit 5")]
        areas = [r[0] for r in db.execute("select distinct lsoa_code from person limit 5")]
    return Samples(
        area_codes=tuple(a for a in areas if a) or ("E01009522",), pseudonyms=tuple(pseudonyms)
    )


@pytest.fixture(scope="package")
def fuzz_trust(demo_trust: Trust) -> Iterator[FuzzTrust]:
    """The shared demo trust (tests/conftest.py): fuzzing only asks; the ledgers are read
    from marks taken before each request, so earlier users' entries do not matter."""
    fuzz = FuzzTrust(demo_trust)
    try:
        yield fuzz
    finally:
        fuzz.close()


__all__ = ["FUZZ", "NODES", "FuzzTrust", "fuzz_trust"]
