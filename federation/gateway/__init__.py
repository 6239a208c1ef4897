"""The datatrust gateway: one GraphQL query answered across every node's subgraph.

It fetches each node's Federation v2 SDL and composes a supergraph (:func:`compose`),
plans a query into per-node fetches with entity lookups batched into one ``_entities`` call
per node per step (:func:`plan_operation`, :func:`format_plan`), runs independent fetches
concurrently and merges the answers, returning partial data with per-node errors when a
node fails (:func:`execute_plan`), and serves it all over HTTP (:func:`create_gateway_app`),
forwarding the caller's purpose and identity to each node and never adding its own.
"""

from ._app import create_gateway_app
from ._compose import compose
from ._errors import CompositionError, InvalidOperation, NodeRefused, NotReady
from ._execute import FORWARDED_HEADERS, execute_plan
from ._format import format_plan
from ._gateway import Authorize, Gateway
from ._plan import EntityTarget, Fetch, PlanCache, QueryPlan, check_variables, plan_operation
from ._selection import Condition, SelectedField, SelectedFragment
from ._supergraph import Supergraph

__all__ = [
    "FORWARDED_HEADERS",
    "Authorize",
    "CompositionError",
    "Condition",
    "EntityTarget",
    "Fetch",
    "Gateway",
    "InvalidOperation",
    "NodeRefused",
    "NotReady",
    "PlanCache",
    "QueryPlan",
    "SelectedField",
    "SelectedFragment",
    "Supergraph",
    "check_variables",
    "compose",
    "create_gateway_app",
    "execute_plan",
    "format_plan",
    "plan_operation",
]
