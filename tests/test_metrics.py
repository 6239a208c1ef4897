"""``/metrics`` of the gateway and each node: decisions, ingest, and what expires when.

A fresh trust in one process (tests/_observed.py) answers a permitted and a refused
request, the council node takes a webhook with a readable uplink and an unreadable one,
and each part's Prometheus text must then show exactly those counts, and expiry gauges
within a minute of the real expiry of the signed directory and of the part's certificate.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from datatrust._prepare import node_pseudonymiser
from datatrust.ingest import SECRET_HEADER, ingest_file, source_format, webhook_secret
from datatrust.network import load_directory, load_operator_public_key, operator_public_key_path
from datatrust.store import create_store_engine
from tests._observed import AREAS, NODES, ObservedTrust, observed_trust
from tests.ingest.test_mqtt import INVENTORY, uplink

THINGS_STACK = "things-stack-uplinks"


@pytest.fixture(scope="module")
def trust(tmp_path_factory) -> ObservedTrust:
    with observed_trust(tmp_path_factory.mktemp("measured")) as trust:
        yield trust


def samples(client, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples called ``name`` on ``client``'s /metrics: labels (sorted) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name
    }


def test_policy_decisions_are_counted_by_outcome_and_code_at_the_gateway_and_each_node(trust):
    planning = trust.identity.headers("service-planning")
    assert trust.ask(AREAS, planning).status_code == 200
    refused = trust.ask(AREAS, {**planning, "Purpose": "research"})  # the token does not allow it
    assert refused.status_code == 403, refused.text
    code = refused.json()["errors"][0]["extensions"]["code"]
    assert samples(trust.gateway, "datatrust_policy_decisions_total") == {
        (("code", "OK"), ("component", "gateway"), ("outcome", "permit")): 1.0,
        (("code", code), ("component", "gateway"), ("outcome", "deny")): 1.0,
    }
    # The refusal never reached a node; asked directly, the health node refuses it too.
    direct = trust.nodes["health"].post(
        "/graphql",
        json={"query": "{ _entities(representations: []) { __typename } }"},
        headers={**planning, "Purpose": "research"},
    )
    assert direct.status_code == 403, direct.text
    for node in NODES:
        expected = {(("code", "OK"), ("component", f"node:{node}"), ("outcome", "permit")): 1.0}
        if node == "health":
            expected[(("code", code), ("component", "node:health"), ("outcome", "deny"))] = 1.0
        assert samples(trust.nodes[node], "datatrust_policy_decisions_total") == expected, node


def test_records_loaded_and_quarantined_by_webhook_ingest_are_counted_on_the_council_node(trust):
    inventory = trust.data_dir / "sensor_inventory.csv"
    inventory.write_text(INVENTORY, encoding="utf-8")
    engine = create_store_engine(f"sqlite:///{trust.data_dir / 'council.db'}")
    ingest_file(  # another process's load (a file ingest): not the node's to count
        engine,
        inventory,
        source_format("sensor-inventory", node_id="council"),
        node_pseudonymiser(trust.data_dir, "council"),
    )
    engine.dispose()
    secret = {SECRET_HEADER: webhook_secret(trust.data_dir / "keys" / "council")}
    council = trust.nodes["council"]
    good = council.post(
        "/ingest/ttn", content=json.dumps(uplink("pc-live-01", 1, 7)), headers=secret
    )
    bad = council.post("/ingest/ttn", content=b'{"end_device_ids": ', headers=secret)
    assert (good.json()["records_loaded"], bad.json()["records_quarantined"]) == (1, 1)
    assert samples(council, "datatrust_ingest_records_loaded_total") == {
        (("component", "node:council"), ("format", THINGS_STACK)): 1.0
    }
    assert samples(council, "datatrust_ingest_records_quarantined_total") == {
        (("component", "node:council"), ("format", THINGS_STACK), ("source", "/ingest/ttn")): 1.0
    }
    assert samples(trust.nodes["health"], "datatrust_ingest_records_loaded_total") == {}


def test_the_expiry_gauges_are_the_seconds_left_on_the_directory_and_the_certificate(trust):
    key = load_operator_public_key(operator_public_key_path(trust.data_dir))
    directory = load_directory(trust.data_dir / "directory.jws", key).directory
    now = dt.datetime.now(dt.UTC)
    for part, client in [("gateway", trust.gateway), *trust.nodes.items()]:
        pem = (trust.data_dir / "tls" / f"{part}.pem").read_bytes()
        certificate_left = x509.load_pem_x509_certificate(pem).not_valid_after_utc - now
        component = "gateway" if part == "gateway" else f"node:{part}"
        assert samples(client, "datatrust_certificate_expiry_seconds") == {
            (("component", component),): pytest.approx(certificate_left.total_seconds(), abs=60)
        }, part
        assert certificate_left.total_seconds() > 300 * 86400  # a fresh one-year certificate
        if part != "gateway":  # the gateway serves no directory-checked peers
            assert samples(client, "datatrust_directory_expiry_seconds") == {
                (("component", component),): pytest.approx(
                    (directory.expires_at - now).total_seconds(), abs=60
                )
            }
