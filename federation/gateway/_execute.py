"""Run a query plan against the nodes and merge their answers into the client's shape.

Every node call goes through the injected ``httpx.AsyncClient`` (the transport seam) with
only the caller's forwarded headers. A node that fails, stalls or answers nonsense costs
only its own fields: they are null, and an error names the node. A query sent on a kept-alive
connection the node closed at that moment is sent once more (see ``_Run._send``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
from graphql import execute_sync, parse

from datatrust._tracing import node_call_span
from datatrust.errors import DatatrustError, PeerError, graphql_error

from ._errors import NodeRefused
from ._json import dumps, loads
from ._plan import Fetch, QueryPlan
from ._shape import deep_merge, shape
from ._supergraph import Supergraph

FORWARDED_HEADERS = ("Purpose", "Authorization", "traceparent", "X-Request-Id")
"""The caller's headers passed to every node; the gateway adds none of its own privileges.

``X-Request-Id`` is the one the gateway's HTTP layer vetted or made up for this request, so
every node's audit entry for it carries the same id as the gateway's own. ``traceparent``
is replaced by the gateway's own client span for the call (``node_call_span``) whenever
the gateway is tracing, so each node's spans are children of the gateway's.
"""

_log = logging.getLogger("datatrust.federation.gateway")
_Errors = list[dict[str, Any]]


async def execute_plan(
    plan: QueryPlan,
    supergraph: Supergraph,
    *,
    client: httpx.AsyncClient,
    urls: Mapping[str, str],
    variables: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_seconds: float = 10.0,
) -> dict[str, Any]:
    """Run ``plan`` and return the GraphQL response body, with per-node errors if any."""
    wanted = {name.lower(): name for name in FORWARDED_HEADERS}
    forwarded = {
        wanted[name.lower()]: value
        for name, value in (headers or {}).items()
        if name.lower() in wanted
    }
    run = _Run(client, urls, dict(variables or {}), forwarded, timeout_seconds)
    raw: dict[str, Any] = {}
    errors: _Errors = []
    if plan.introspection is not None:
        result = execute_sync(
            supergraph.schema, parse(plan.introspection), variable_values=run.variables
        )
        deep_merge(raw, result.data or {})
    for step in plan.steps:
        for found in await asyncio.gather(*(run.fetch(fetch, raw) for fetch in step)):
            errors.extend(found)
    body: dict[str, Any] = {"data": shape(supergraph.schema, plan.selections, raw, run.variables)}
    if errors:
        body["errors"] = errors
    if run.disclosure:
        body["extensions"] = {"disclosureControl": run.disclosure}
    return body


class _Run:
    def __init__(
        self,
        client: httpx.AsyncClient,
        urls: Mapping[str, str],
        variables: dict[str, Any],
        headers: dict[str, str],
        timeout_seconds: float,
    ) -> None:
        self.client = client
        self.urls = urls
        self.variables = variables
        self.headers = headers
        self.timeout_seconds = timeout_seconds
        self.disclosure: dict[str, dict[str, Any]] = {}

    async def fetch(self, fetch: Fetch, raw: dict[str, Any]) -> _Errors:
        if fetch.targets:
            return await self._entities(fetch, raw)
        data, errors = await self._post(fetch, {})
        if isinstance(data, dict):
            deep_merge(raw, data)
        return [_node_error(fetch.service, error, error.get("path")) for error in errors]

    async def _entities(self, fetch: Fetch, raw: dict[str, Any]) -> _Errors:
        representations: list[dict[str, Any]] = []
        index: dict[Any, int] = {}
        placements = []
        for target in fetch.targets:
            typename_key = target.keys[0][1]
            for item, path in _walk(raw, target.path, ()):
                if not isinstance(item, dict) or item.get(typename_key) != target.type_name:
                    continue
                representation = {name: item.get(key) for name, key in target.keys}
                if None in representation.values():
                    continue
                number = index.setdefault(_identity(representation), len(representations))
                if number == len(representations):
                    representations.append(representation)
                placements.append((target, item, path, number))
        if not representations:
            return []
        data, errors = await self._post(fetch, {fetch.representations_variable: representations})
        entities = data.get("_entities") if isinstance(data, dict) else None
        if data is not None and (
            not isinstance(entities, list) or len(entities) != len(representations)
        ):
            count = len(entities) if isinstance(entities, list) else "no"
            return [
                _error(
                    PeerError(
                        f"node '{fetch.service}' answered {count} entities for "
                        f"{len(representations)} representations; check its _entities resolver",
                        node=fetch.service,
                    )
                )
            ]
        for target, item, _, number in placements:
            entity = entities[number] if entities else None
            if isinstance(entity, dict):
                if target.renames:  # a copy: one entity may be placed in several items
                    entity = dict(entity)
                    for alias, key in target.renames:
                        entity[key] = entity.pop(alias, None)
                deep_merge(item, entity)
        first_path = {}
        for _, _, path, number in placements:
            first_path.setdefault(number, path)
        return [
            _node_error(fetch.service, error, _entity_path(error.get("path"), first_path))
            for error in errors
        ]

    def _note_disclosure(self, node: str, extensions: Any) -> None:
        """Keep each node's disclosure-control note, so the analyst learns, per node, how
        many cells were suppressed and under which threshold and rounding (suppressed cells
        are null; without the note they could be read as missing data)."""
        note = extensions.get("disclosureControl") if isinstance(extensions, dict) else None
        if not isinstance(note, dict):
            return
        kept = self.disclosure.get(node)
        if kept is None:
            self.disclosure[node] = dict(note)
        elif isinstance(note.get("suppressedCells"), int):
            kept["suppressedCells"] = int(kept.get("suppressedCells", 0)) + note["suppressedCells"]

    async def _send(self, node: str, body: dict[str, Any]) -> httpx.Response:
        """POST ``body`` to ``node``; once more if a reused connection closed under it.

        A node closes a keep-alive connection when it has been idle for its keep-alive
        time; a request sent on it at that moment fails before any response with "server
        disconnected". The query is read-only, so it is sent once more, on a new
        connection. A failure after the response began, on a new connection, or a timeout
        is reported as it is (``httpcore``'s trace events tell which).
        """
        events: list[str] = []

        async def trace(event: str, _info: dict[str, Any]) -> None:
            events.append(event)

        content = dumps(body)
        with node_call_span(node) as trace_headers:
            headers = {**self.headers, **trace_headers, "Content-Type": "application/json"}
            try:
                return await self.client.post(
                    self.urls[node],
                    content=content,
                    headers=headers,
                    timeout=self.timeout_seconds,
                    extensions={"trace": trace},
                )
            except _CLOSED_UNDER_US as error:
                if not _on_reused_connection_before_response(events):
                    raise
                _log.info("node %s closed a kept-alive connection (%r); sending again", node, error)
            return await self.client.post(
                self.urls[node], content=content, headers=headers, timeout=self.timeout_seconds
            )

    async def _post(self, fetch: Fetch, extra: dict[str, Any]) -> tuple[Any, _Errors]:
        """The node's ``data`` and its GraphQL errors; a failed call becomes one error."""
        used = {name: self.variables[name] for name in fetch.variables if name in self.variables}
        body = {"query": fetch.operation, "variables": {**extra, **used}, "operationName": None}
        node = fetch.service
        try:
            async with asyncio.timeout(self.timeout_seconds):
                response = await self._send(node, body)
        except TimeoutError:
            return None, [_unavailable(node, f"did not answer within {self.timeout_seconds:g} s")]
        except httpx.HTTPError as error:
            _log.warning("node %s could not be reached: %r", node, error)
            return None, [_unavailable(node, f"could not be reached ({type(error).__name__})")]
        try:
            answer = loads(response.content)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not ("data" in answer or "errors" in answer):
            return None, [
                _unavailable(node, f"answered HTTP {response.status_code} without a GraphQL body")
            ]
        self._note_disclosure(node, answer.get("extensions"))
        errors = answer.get("errors") or []
        if not isinstance(errors, list):
            errors = [{"message": "errors is not a list"}]
        return answer.get("data"), [
            e if isinstance(e, dict) else {"message": str(e)} for e in errors
        ]


_CLOSED_UNDER_US = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)
"""How a connection the node closed surfaces (never a timeout: that is not retried)."""


def _on_reused_connection_before_response(events: list[str]) -> bool:
    """Whether the request went out on a pooled connection and no response head came back.

    Needs positive evidence (a request sent, no connection opened for it); a transport
    that reports no trace events is never retried.
    """
    sent = any(event.endswith("send_request_headers.started") for event in events)
    connected = any(event.startswith("connection.connect_") for event in events)
    answered = any(event.endswith("receive_response_headers.complete") for event in events)
    return sent and not connected and not answered


def _identity(representation: dict[str, Any]) -> Any:
    """A dict key equal for equal representations, whatever order their fields came in.

    Plain strings (codes, ids: nearly every key) key by a tuple of the sorted pairs, as
    cheap as it gets; anything else (numbers, where ``1`` must stay apart from ``1.0`` and
    ``True``; nested key objects) by its canonical JSON text, as before.
    """
    if all(type(value) is str for value in representation.values()):
        return tuple(sorted(representation.items()))
    return json.dumps(representation, sort_keys=True)


def _walk(
    value: Any, path: tuple[str, ...], at: tuple[str | int, ...]
) -> Iterator[tuple[Any, tuple[str | int, ...]]]:
    """Every value found at ``path`` (``"@"`` flattens a list) with its concrete path."""
    if not path:
        yield value, at
    elif isinstance(value, list):
        rest = path[1:] if path[0] == "@" else path
        for number, item in enumerate(value):
            yield from _walk(item, rest, (*at, number))
    elif isinstance(value, dict) and path[0] in value:
        yield from _walk(value[path[0]], path[1:], (*at, path[0]))


def _entity_path(path: Any, first_path: dict[int, tuple[str | int, ...]]) -> Any:
    is_entity_path = isinstance(path, list) and len(path) >= 2 and path[0] == "_entities"
    if is_entity_path and isinstance(path[1], int) and path[1] in first_path:
        return [*first_path[path[1]], *path[2:]]
    return None


def _unavailable(node: str, what: str) -> dict[str, Any]:
    return _error(PeerError(f"node '{node}' {what}; its fields are null", node=node))


def _node_error(node: str, error: dict[str, Any], path: Any) -> dict[str, Any]:
    message = str(error.get("message", "the node reported an error without a message"))
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, dict) else None
    refused = (
        NodeRefused(message, code=str(code), node=node) if code else PeerError(message, node=node)
    )
    valid = isinstance(path, list) and all(isinstance(p, str | int) for p in path)
    return _error(refused, path if valid else None)


def _error(error: DatatrustError, path: list[str | int] | None = None) -> dict[str, Any]:
    return graphql_error(error, path=path)
