"""The datatrust gateway: one GraphQL query answered across every node's subgraph.

It fetches each node's Federation v2 SDL and composes a supergraph (:func:`compose`),
plans a query into per-node fetches with entity lookups batched into one ``_entities`` call
per node per step (:func:`plan_operation`, :func:`format_plan`), runs independent fetches
concurrently and merges the answers, returning partial data with per-node errors when a
node fails (:func:`execute_plan`), and serves it all over HTTP (:func:`create_gateway_app`),
forwarding the caller's purpose, identity and request id to each node and never adding its
own. Every operation is measured against :class:`QueryLimits` (:func:`check_operation`)
before any node is called.
"""

from ._app import create_gateway_app
from ._compose import compose
from ._errors import (
    CompositionError,
    IntrospectionDisabled,
    InvalidOperation,
    NodeRefused,
    NotReady,
    QueryTooComplex,
    RequestTooLarge,
)
from ._execute import FORWARDED_HEADERS, execute_plan
from ._format import format_plan
from ._gateway import Authorize, Gateway
from ._limits import (
    QueryLimits,
    QueryMeasure,
    check_batch_size,
    check_document_size,
    check_operation,
)
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
    "IntrospectionDisabled",
    "InvalidOperation",
    "NodeRefused",
    "NotReady",
    "PlanCache",
    "QueryLimits",
    "QueryMeasure",
    "QueryPlan",
    "QueryTooComplex",
    "RequestTooLarge",
    "SelectedField",
    "SelectedFragment",
    "Supergraph",
    "check_batch_size",
    "check_document_size",
    "check_operation",
    "check_variables",
    "compose",
    "create_gateway_app",
    "execute_plan",
    "format_plan",
    "plan_operation",
]
