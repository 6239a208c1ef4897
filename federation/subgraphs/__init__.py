"""Each agency node's Apollo Federation 2.7 subgraph, and the endpoint that guards it.

``subgraph_schema(node_id)`` gives the strawberry schema a node serves; every node's
``/graphql`` goes through ``SubgraphEndpoint``, which asks the enforcement point before
any resolver runs and records the decision in the node's audit ledger.
"""

from __future__ import annotations

from importlib import import_module

from datatrust.federation.subgraphs._base import (
    FEDERATION_VERSION,
    NodeContext,
    SubgraphSchema,
)
from datatrust.federation.subgraphs._endpoint import (
    RequestOutcome,
    SubgraphEndpoint,
    read_graphql_request,
)

__all__ = [
    "FEDERATION_VERSION",
    "SUBGRAPH_MODULES",
    "NodeContext",
    "RequestOutcome",
    "SubgraphEndpoint",
    "SubgraphSchema",
    "read_graphql_request",
    "subgraph_schema",
]

SUBGRAPH_MODULES = {
    "council": "datatrust.federation.subgraphs.council",
    "health": "datatrust.federation.subgraphs.health",
    "social-care": "datatrust.federation.subgraphs.social_care",
}


def subgraph_schema(node_id: str) -> SubgraphSchema:
    """The subgraph schema of the node ``node_id`` (imported only when asked for)."""
    return import_module(SUBGRAPH_MODULES[node_id]).schema
