"""The endpoint refuses an obligation it cannot meet rather than pass data as it is."""

from __future__ import annotations

import copy

from starlette.applications import Starlette
from starlette.routing import Route

from datatrust.federation.subgraphs import SubgraphEndpoint, subgraph_schema
from datatrust.federation.subgraphs._base import NodeKeys
from datatrust.policies import PolicyRuntime, PolicySnapshot, Requester, shipped_policy
from datatrust.store import create_store_engine, migrate
from tests.asgi_client import app_client

RESEARCHER = Requester(
    subject="rae", agency="university", roles=("researcher",), client_id="r", purposes=("research",)
)


def pseudonymised_birth_year() -> PolicySnapshot:
    shipped = shipped_policy()
    agreements = copy.deepcopy(shipped.agreements)
    for agreement in agreements["agreements"]:
        for dataset in agreement["datasets"]:
            for entry in dataset["fields"]:
                if (
                    entry["field"] == "Person.birthYear"
                    and agreement["id"] == "dsa-research-cohort"
                ):
                    entry["output"] = "pseudonymised"
    return PolicySnapshot("test", "test v1", shipped.register, agreements)


def test_a_pseudonymise_obligation_on_a_field_the_node_cannot_pseudonymise_refuses(tmp_path):
    engine = create_store_engine(f"sqlite:///{tmp_path / 'health.db'}")
    migrate(engine)
    audited = []
    endpoint = SubgraphEndpoint(
        schema=subgraph_schema("health"),
        node_id="health",
        engine=engine,
        runtime=PolicyRuntime(pseudonymised_birth_year, lambda: "test"),
        authenticate=lambda header: RESEARCHER,
        audit=audited.append,
        keys=NodeKeys(pseudonym_key=b"k" * 32, sdc_salt=1),
    )
    app = Starlette(routes=[Route("/graphql", endpoint.__call__, methods=["POST"])])
    with app_client(app) as client:
        response = client.post(
            "/graphql",
            json={"query": "{ patients { birthYear } }"},
            headers={"Purpose": "research"},
        )
    body = response.json()
    assert response.status_code == 403
    assert body["data"] is None
    assert "Person.birthYear in pseudonymised form" in body["errors"][0]["message"]
    assert [entry.outcome for entry in audited] == ["deny"]
