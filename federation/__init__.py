"""GraphQL across the trust: each node's Federation v2 subgraph and the gateway.

A node's subgraph (strawberry, Apollo Federation 2.7) exposes only that agency's own data,
with the enforcement point consulted before any resolver runs. The gateway (graphql-core)
fetches every node's SDL, composes a supergraph, plans a query into per-node fetches with
entity lookups batched into one ``_entities`` call per node per step, and merges the
answers, forwarding the caller's purpose and never adding privileges of its own.
"""

from datatrust.federation._access import METADATA_FIELDS, OperationAccess, operation_access

__all__ = ["METADATA_FIELDS", "OperationAccess", "operation_access"]
