"""The gateway's own errors, kept in the datatrust tree.

::

    CallerError
    ├── QueryError
    │   └── InvalidOperation     several parse or validation errors, each a QueryError
    ├── QueryTooComplex          over a limit on depth, aliases or estimated cost
    ├── RequestTooLarge          a document or batch over its size limit (413)
    └── IntrospectionDisabled    introspection asked for where the operator turned it off
    SourceError
    ├── CompositionError     the subgraphs' schemas cannot be composed into one supergraph
    └── PeerError
        ├── NodeRefused      a node answered with a GraphQL error carrying its own code
        └── NotReady         no supergraph yet: a node's SDL is missing or composition failed
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from datatrust.errors import CallerError, PeerError, QueryError, SourceError


class CompositionError(SourceError):
    """The subgraphs' SDL cannot be composed; the message names type, field and subgraphs."""

    code = "COMPOSITION_FAILED"
    status_hint = 503


class NodeRefused(PeerError):
    """A node answered with a GraphQL error; its own ``extensions.code`` is passed through."""

    def __init__(self, message: str, *, code: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class NotReady(PeerError):
    """The gateway has no supergraph yet; ``/readyz`` says which node or rule is the cause."""

    status_hint = 503


class InvalidOperation(QueryError):
    """A GraphQL document that does not parse or validate; ``errors`` holds one per problem."""

    def __init__(self, errors: list[QueryError]) -> None:
        super().__init__(errors[0].message, **errors[0].details)
        self.errors = tuple(errors)

    @classmethod
    def from_graphql(cls, errors: list[GraphQLError]) -> InvalidOperation:
        """Translate graphql-core's errors, keeping their messages and locations."""
        return cls(
            [
                QueryError(
                    error.message,
                    locations=[{"line": loc.line, "column": loc.column} for loc in error.locations]
                    if error.locations
                    else None,
                )
                for error in errors
            ]
        )


class QueryTooComplex(CallerError):
    """An operation over one of the gateway's limits (depth, aliases, estimated cost).

    ``details`` name the limit, the measured value, the maximum and the field where the
    limit was crossed, so the caller can see what to ask for less of.
    """

    code = "QUERY_TOO_COMPLEX"


class RequestTooLarge(CallerError):
    """A query document or a batch bigger than the gateway accepts, refused before parsing."""

    code = "REQUEST_TOO_LARGE"
    status_hint = 413


class IntrospectionDisabled(CallerError):
    """The operator turned introspection off (setting ``introspection = false``)."""

    code = "INTROSPECTION_DISABLED"
    status_hint = 403
