"""Hypothesis strategies for bad (and good) GraphQL-over-HTTP requests, built from a schema.

Valid documents come from hypothesis-graphql over the schema the target serves (the
gateway's composed API schema, or a node's own subgraph SDL); the rest are written here
from the same schema's types, so every kind of bad input names real fields and real
arguments: wrong argument types, unknown fields, deep nesting, huge aliases, variables of
the wrong type or missing or extra, malformed JSON bodies, wrong content types, and odd,
oversized or missing ``Purpose``, ``Authorization``, ``X-Request-Id`` and ``traceparent``
headers. Most requests carry a real token and a real purpose, so that many reach the
policy and the data, where an unaudited answer would show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import count
from urllib.parse import urlencode

import graphql
import hypothesis_graphql
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
)
from hypothesis import assume
from hypothesis import strategies as st

__all__ = [
    "FOUND_BEFORE",
    "Credentials",
    "FuzzRequest",
    "Samples",
    "requests",
    "schema_from_sdl",
]

MAX_SELECTION_DEPTH = 4
MAX_URL_BYTES = 4000
"""A GET's query string stays under what uvicorn (h11) reads of a request head."""
_ids = count()
_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True)


@dataclass(frozen=True)
class Credentials:
    """Real tokens by purpose, and tokens that must be refused (made by the fixture)."""

    by_purpose: dict[str, str]
    """Purpose id -> a real token from the running identity server that allows it."""
    refused: dict[str, str]
    """Kind ("expired", "wrong signature", ...) -> a token the trust must refuse."""


@dataclass(frozen=True)
class Samples:
    """Real values to put into arguments and representations, so lookups can hit."""

    area_codes: tuple[str, ...]
    pseudonyms: tuple[str, ...]


@dataclass(frozen=True)
class FuzzRequest:
    """One HTTP request to send, and the request id it carries if that id is a sane one."""

    method: str
    content: bytes | None
    params: tuple[tuple[str, str], ...]
    headers: tuple[tuple[bytes, bytes], ...]
    request_id: str | None
    """The X-Request-Id sent when it is unique and sane; None when odd or left out."""
    kind: str = field(default="")

    def __repr__(self) -> str:  # the falsifying example printed by Hypothesis: readable
        content = (
            self.content
            if self.content is None or len(self.content) < 4000
            else (self.content[:2000] + b"...(%d bytes)" % len(self.content))
        )
        headers = [(k.decode("latin-1"), v[:300].decode("latin-1")) for k, v in self.headers]
        return (
            f"FuzzRequest(kind={self.kind!r}, method={self.method!r}, params={self.params!r}, "
            f"headers={headers!r}, content={content!r})"
        )


def schema_from_sdl(sdl: str) -> GraphQLSchema:
    """A node's subgraph schema from its ``_service { sdl }`` (federation directives unchecked)."""
    return graphql.build_schema(sdl, assume_valid_sdl=True)


# --- argument values ------------------------------------------------------------------------


def _dates() -> st.SearchStrategy[str]:
    return st.dates().map(lambda d: d.isoformat())


def _odd_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            [
                "",
                " ",
                "null",
                "2026-13-45",
                "'; DROP TABLE person; --",
                "\u202e",
                "\ud800",
                "a\udfff",
            ]
        ),
        st.integers(0, 6).map(lambda n: "x" * (10**n)),
    )


def _representation(samples: Samples) -> st.SearchStrategy[dict]:
    real_codes = st.sampled_from(samples.area_codes)
    area = st.fixed_dictionaries(
        {"__typename": st.just("Area"), "code": st.one_of(real_codes, real_codes, _odd_text())}
    )
    person = st.fixed_dictionaries(
        {
            "__typename": st.just("Person"),
            "pseudonym": st.sampled_from(samples.pseudonyms) | _odd_text(),
        }
    )
    odd = st.dictionaries(_NAMES, _json_leaves(), max_size=3)
    return st.one_of(area, area, person, odd)


def _json_leaves() -> st.SearchStrategy[object]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    )


def _json_values() -> st.SearchStrategy[object]:
    return st.recursive(
        _json_leaves(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=8,
    )


def _value_of(type_: graphql.GraphQLInputType, samples: Samples) -> st.SearchStrategy[object]:
    """A JSON value of the right shape for an input type (as a variable's value)."""
    if isinstance(type_, GraphQLNonNull):
        return _value_of(type_.of_type, samples)
    nullable = st.none()
    if isinstance(type_, GraphQLList):
        return nullable | st.lists(_value_of(type_.of_type, samples), max_size=4)
    named = get_named_type(type_)
    if isinstance(named, GraphQLEnumType):
        return nullable | st.sampled_from(sorted(named.values))
    if isinstance(named, GraphQLInputObjectType):
        return nullable | st.fixed_dictionaries(
            {name: _value_of(f.type, samples) for name, f in named.fields.items()}
        )
    by_name: dict[str, st.SearchStrategy[object]] = {
        "Int": st.integers(-(2**31), 2**31 - 1) | st.integers(-5, 1000),
        "Float": st.floats(allow_nan=False, allow_infinity=False),
        "Boolean": st.booleans(),
        "String": st.text(max_size=30),
        "ID": st.sampled_from(samples.area_codes + samples.pseudonyms) | st.text(max_size=20),
        "Date": _dates(),
        "DateTime": st.datetimes().map(lambda d: d.isoformat()),
        "_Any": _representation(samples),
    }
    return nullable | by_name.get(named.name, st.text(max_size=20))


def _custom_scalars(
    schema: GraphQLSchema, samples: Samples, *, odd: bool = False
) -> dict[str, st.SearchStrategy]:
    """Literal strategies for the schema's own scalars, as hypothesis-graphql needs them
    (``odd``: dates that do not parse too, for documents that must be refused)."""
    node = hypothesis_graphql.nodes
    strategies: dict[str, st.SearchStrategy] = {
        "Date": (_dates() | _odd_text() if odd else _dates()).map(node.String),
        "DateTime": st.datetimes().map(lambda d: node.String(d.isoformat())),
        "_Any": _representation(samples).map(_literal),
    }
    return {
        name: strategy
        for name, strategy in strategies.items()
        if isinstance(schema.type_map.get(name), GraphQLScalarType)
    }


def _literal(value: object) -> graphql.ValueNode:
    """A JSON value as a GraphQL literal (``ast_from_value`` needs a type; this does not)."""
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return graphql.IntValueNode(value=str(value))
    if isinstance(value, float):
        return graphql.FloatValueNode(value=repr(value))
    if isinstance(value, str):
        return graphql.StringValueNode(value=value)
    if isinstance(value, list):
        return graphql.ListValueNode(values=tuple(_literal(v) for v in value))
    fields = tuple(
        graphql.ObjectFieldNode(name=graphql.NameNode(value=_name(k)), value=_literal(v))
        for k, v in dict(value).items()
    )
    return graphql.ObjectValueNode(fields=fields)


def _name(text: str) -> str:
    """A GraphQL name from arbitrary text (object literal keys must be names)."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in text)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


# --- documents --------------------------------------------------------------------------------


def _leaves(type_: graphql.GraphQLOutputType, depth: int = 0) -> str:
    """A selection of every field reachable under ``type_`` (arguments left to defaults)."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLScalarType | GraphQLEnumType):
        return ""
    if depth >= MAX_SELECTION_DEPTH:
        return "{ __typename }"
    if isinstance(named, GraphQLUnionType):
        parts = [f"... on {member.name} {_leaves(member, depth)}" for member in named.types]
        return "{ __typename " + " ".join(parts) + " }"
    assert isinstance(named, GraphQLObjectType | GraphQLInterfaceType)
    parts = []
    for name, fld in named.fields.items():
        if any(graphql.is_required_argument(a) for a in fld.args.values()):
            continue  # a required argument: left to the generated documents
        parts.append(f"{name} {_leaves(fld.type, depth + 1)}".strip())
    return "{ " + " ".join(parts or ["__typename"]) + " }"


def _some_leaves(draw, type_: graphql.GraphQLOutputType, depth: int = 0) -> str:
    """Like ``_leaves``, but a drawn, non-empty part of each selection set (agreements
    share some fields of a type and not others, so asking for all of them is refused)."""
    named = get_named_type(type_)
    if isinstance(named, GraphQLScalarType | GraphQLEnumType):
        return ""
    if depth >= MAX_SELECTION_DEPTH:
        return "{ __typename }"
    if isinstance(named, GraphQLUnionType):
        parts = [f"... on {m.name} {_some_leaves(draw, m, depth)}" for m in named.types]
        return "{ " + " ".join(parts) + " }"
    optional = sorted(
        name
        for name, fld in named.fields.items()
        if not any(graphql.is_required_argument(a) for a in fld.args.values())
    )
    if not optional:
        return "{ __typename }"
    chosen = draw(st.lists(st.sampled_from(optional), min_size=1, max_size=3, unique=True))
    parts = [f"{n} {_some_leaves(draw, named.fields[n].type, depth + 1)}".strip() for n in chosen]
    return "{ " + " ".join(parts) + " }"


def _data_fields(schema: GraphQLSchema) -> list[str]:
    return [name for name in schema.query_type.fields if name not in ("_service",)]


def valid_documents(schema: GraphQLSchema, samples: Samples) -> st.SearchStrategy[str]:
    return hypothesis_graphql.queries(
        schema, custom_scalars=_custom_scalars(schema, samples), allow_x00=False
    )


def full_selections(schema: GraphQLSchema, samples: Samples) -> st.SearchStrategy[str]:
    """A root field with every field under it selected, its lookups given real keys.

    What a real client asks: these reach the policy and, when it permits, the data.
    """
    representations = st.lists(_representation(samples), min_size=1, max_size=5).map(
        lambda items: "[" + ", ".join(graphql.print_ast(_literal(i)) for i in items) + "]"
    )
    codes = st.lists(st.sampled_from(samples.area_codes), max_size=3).map(json.dumps)

    askable = [
        name
        for name, fld in schema.query_type.fields.items()
        if name != "_service"
        and not any(
            graphql.is_required_argument(a) and n != "representations" for n, a in fld.args.items()
        )
    ]

    @st.composite
    def document(draw) -> str:
        name = draw(st.sampled_from(askable))
        fld = schema.query_type.fields[name]
        args = []
        if "representations" in fld.args:
            args.append(f"representations: {draw(representations)}")
        if "codes" in fld.args and draw(st.booleans()):
            args.append(f"codes: {draw(codes)}")
        if "first" in fld.args and draw(st.booleans()):
            args.append(f"first: {draw(st.integers(0, 50))}")
        listed = f"({', '.join(args)})" if args else ""
        return "{ " + f"{name}{listed} {_some_leaves(draw, fld.type)}" + " }"

    return document()


def invalid_documents(schema: GraphQLSchema, samples: Samples) -> st.SearchStrategy[str]:
    """One schema violation each: a wrong argument type, a missing argument, ..."""
    return hypothesis_graphql.queries(
        schema,
        custom_scalars=_custom_scalars(schema, samples, odd=True),
        mode=hypothesis_graphql.Mode.NEGATIVE,
    )


def unknown_fields(schema: GraphQLSchema) -> st.SearchStrategy[str]:
    names = _NAMES
    root = st.sampled_from(_data_fields(schema))

    def document(field_name: str, unknown: str, where: str) -> str:
        selection = _leaves(schema.query_type.fields[field_name].type)
        if where == "root":
            return "{ " + unknown + " }"
        if where == "argument":
            return "{ " + f"{field_name}({unknown}: 1) {selection}" + " }"
        inner = selection[:-1] + f" {unknown} }}" if selection else f" {{ {unknown} }}"
        return "{ " + f"{field_name} {inner}" + " }"

    return st.builds(document, root, names, st.sampled_from(["root", "argument", "nested"]))


def deep_nesting() -> st.SearchStrategy[str]:
    """Selections, fragments and list values nested far beyond any schema (or parser)."""
    depth = st.integers(1, 3000)
    return st.one_of(
        depth.map(lambda n: "{" + "a{" * n + "b" + "}" * (n + 1)),
        depth.map(lambda n: "{" + "... on Query {" * n + "__typename" + "}" * (n + 1)),
        depth.map(lambda n: "{ areas(codes: " + "[" * n + '"x"' + "]" * n + ") { code } }"),
        st.integers(1, 60).map(_fragment_chain),
    )


def _fragment_chain(n: int) -> str:
    """Named fragments each spreading the next, and one cycle (invalid, must not loop)."""
    parts = [f"fragment F{i} on Query {{ __typename ...F{i + 1} }}" for i in range(n)]
    parts.append(f"fragment F{n} on Query {{ __typename ...F0 }}")
    return "{ ...F0 } " + " ".join(parts)


def huge_aliases(schema: GraphQLSchema) -> st.SearchStrategy[str]:
    """The same field asked many times under aliases, or under one enormous alias."""
    roots = st.sampled_from([*_data_fields(schema), "__typename"])

    def many(field_name: str, times: int) -> str:
        if field_name == "__typename":
            return "{ " + " ".join(f"a{i}: __typename" for i in range(times)) + " }"
        fld = schema.query_type.fields[field_name]
        args = _required_arguments(fld)
        selection = _leaves(fld.type, MAX_SELECTION_DEPTH - 1)
        return "{ " + " ".join(f"a{i}: {field_name}{args} {selection}" for i in range(times)) + " }"

    def long_alias(field_name: str, size: int) -> str:
        return "{ " + "a" * size + ": __typename }"

    return st.one_of(
        st.builds(many, roots, st.integers(2, 3000)),
        st.builds(long_alias, roots, st.integers(100, 200_000)),
    )


def _required_arguments(fld: graphql.GraphQLField) -> str:
    needed = {name: arg for name, arg in fld.args.items() if graphql.is_required_argument(arg)}
    if not needed:
        return ""
    values = {"_Any": '{__typename: "Area", code: "E01009522"}', "String": '"q"'}
    listed = []
    for name, arg in needed.items():
        named = get_named_type(arg.type)
        value = values.get(named.name, "1")
        if isinstance(arg.type.of_type, GraphQLList):
            value = f"[{value}]"
        listed.append(f"{name}: {value}")
    return "(" + ", ".join(listed) + ")"


def syntax_garbage() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(min_size=1, max_size=200),
        st.sampled_from(
            [
                "{",
                "}",
                "{ areas ",
                "query {",
                "subscription { x }",
                "mutation { x }",
                "{ ...F }",
                "query Q($a: Int) { __typename } query Q { __typename }",
                "\x00",
                "#comment only",
            ]
        ),
    )


def documents(schema: GraphQLSchema, samples: Samples) -> st.SearchStrategy[str]:
    valid = valid_documents(schema, samples)
    return st.one_of(
        *[valid] * 4,  # most requests valid, so that many reach the policy and the data
        *[full_selections(schema, samples)] * 4,
        invalid_documents(schema, samples),
        unknown_fields(schema),
        deep_nesting(),
        huge_aliases(schema),
        syntax_garbage(),
    )


# --- variables ---------------------------------------------------------------------------


@st.composite
def variable_operations(draw, schema: GraphQLSchema, samples: Samples) -> tuple[str, object]:
    """An operation passing a root field's arguments as variables, and variables to send.

    The variables are right, of the wrong type, missing, extra, or not an object at all.
    """
    with_args = [n for n, f in schema.query_type.fields.items() if f.args]
    field_name = draw(st.sampled_from(with_args))
    fld = schema.query_type.fields[field_name]
    names = draw(st.lists(st.sampled_from(sorted(fld.args)), min_size=1, unique=True))
    declared = ", ".join(f"${n}: {fld.args[n].type}" for n in names)
    passed = ", ".join(f"{n}: ${n}" for n in names)
    query = f"query Fuzz({declared}) {{ {field_name}({passed}) {_leaves(fld.type)} }}"
    right = {n: draw(_value_of(fld.args[n].type, samples)) for n in names}
    how = draw(st.sampled_from(["right", "right", "wrong type", "missing", "extra", "not object"]))
    if how == "wrong type":
        wrong = draw(st.sampled_from(names))
        right[wrong] = draw(_json_values().filter(lambda v: v is not None))
    elif how == "missing":
        right.pop(draw(st.sampled_from(names)))
    elif how == "extra":
        right[draw(st.text(min_size=1, max_size=10))] = draw(_json_values())
    elif how == "not object":
        return query, draw(_json_values().filter(lambda v: not isinstance(v, dict)))
    return query, right


# --- bodies, content types and headers ------------------------------------------------------


def _json_body(query: object, variables: object, operation_name: object) -> dict:
    body: dict = {"query": query}
    if variables is not ...:
        body["variables"] = variables
    if operation_name is not ...:
        body["operationName"] = operation_name
    return body


@st.composite
def _operation_bodies(draw, schema: GraphQLSchema, samples: Samples) -> tuple[str, dict]:
    """A kind and the JSON object of one GraphQL operation (some fields odd)."""
    if draw(st.integers(0, 3)) == 0:
        query, variables = draw(variable_operations(schema, samples))
        name = draw(st.sampled_from([..., "Fuzz", "Other", None, 7]))
        return "variables", _json_body(query, variables, name)
    query = draw(documents(schema, samples))
    odd = draw(st.sampled_from(["none"] * 12 + ["query", "variables", "operationName", "extra"]))
    body = _json_body(query, ..., ...)
    if odd == "query":
        body["query"] = draw(_json_values().filter(lambda v: not isinstance(v, str)))
    elif odd == "variables":
        body["variables"] = draw(_json_values())
    elif odd == "operationName":
        body["operationName"] = draw(_json_values())
    elif odd == "extra":
        body[draw(st.text(max_size=10))] = draw(_json_values())
    return f"document/{odd}", body


def _malformed_json() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=200),
        st.sampled_from(
            [
                b"",
                b"{",
                b'{"query": "{ __typename }"',
                b"null",
                b"[]",
                b"[1, 2]",
                b'"{ x }"',
                b'{"query": "\xff\xfe"}',
                b'{"query": "{ __typename }", "variables": NaN}',
                b'{"query": "{ __typename }", "variables": {"x": 1e999}}',
                b"\xef\xbb\xbf{}",
            ]
        ),
        st.integers(1, 900_000).map(lambda n: b"[" * n),
        st.integers(1, 300_000).map(lambda n: b'{"query": ' + b"{" * n),
        st.integers(1, 50_000).map(
            lambda n: (
                b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * n + b"]" * n + b"}}"
            )
        ),
        st.integers(1_000_001, 1_100_000).map(lambda n: b'{"query": "' + b"x" * n + b'"}'),
    )


CONTENT_TYPES = (
    b"application/json",
    b"application/json",
    b"application/json; charset=utf-8",
    b"application/graphql-response+json",
    b"application/graphql",
    b"text/plain",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
    b"application/json; charset=latin-1",
    b"\xff\xfe garbage",
    b"",
)


def _bearer(credentials: Credentials, purpose: str | None) -> st.SearchStrategy[bytes | None]:
    real = credentials.by_purpose.get(purpose or "") or next(iter(credentials.by_purpose.values()))
    others = sorted(credentials.by_purpose.values())
    return st.one_of(
        st.just(b"Bearer " + real.encode()),
        st.just(b"Bearer " + real.encode()),
        st.just(b"Bearer " + real.encode()),
        st.sampled_from(others).map(lambda t: b"Bearer " + t.encode()),
        st.sampled_from(sorted(credentials.refused.values())).map(
            lambda t: b"Bearer " + t.encode()
        ),
        st.sampled_from(
            [
                b"Bearer",
                b"Bearer \t.",
                b"bearer " + real.encode(),
                b"Basic YTpi",
                b"Bearer " + real.encode() + b" extra",
                b"Bearer a.b.c",
                b"\xff",
            ]
        ),
        _header_bytes(300),
        st.integers(100, 4000).map(lambda n: b"Bearer " + b"A" * n),
        st.none(),
    )


def _header_bytes(max_size: int) -> st.SearchStrategy[bytes]:
    """Odd header values a client can still send: any visible byte, inner spaces and tabs."""
    visible = st.integers(0x21, 0xFF).filter(lambda c: c != 0x7F)
    inner = st.lists(visible | st.sampled_from([0x20, 0x09]), max_size=max_size)
    return st.builds(lambda first, rest: bytes([first, *rest]).rstrip(b" \t"), visible, inner)


def _header_safe(value: bytes) -> bool:
    """What h11 lets a client send as a header value: visible bytes, inner spaces and tabs."""
    allowed = all(c == 0x09 or 0x20 <= c != 0x7F for c in value)
    return allowed and value == value.strip(b" \t")


PURPOSES = ("service-planning", "research", "direct-care", "safeguarding")


@st.composite
def _headers(
    draw, credentials: Credentials, *, proper: bool
) -> tuple[list[tuple[bytes, bytes]], str | None]:
    """Headers, and the request id among them when it is unique and sane."""
    headers: list[tuple[bytes, bytes]]
    if proper:  # a well-behaved caller: its purpose, its token
        purpose = draw(st.sampled_from(sorted(credentials.by_purpose)))
        request_id = f"fuzz-{next(_ids)}"
        headers = [
            (b"Purpose", purpose.encode()),
            (b"Authorization", b"Bearer " + credentials.by_purpose[purpose].encode()),
            (b"X-Request-Id", request_id.encode()),
        ]
        return headers, request_id
    purpose = draw(st.sampled_from(PURPOSES + PURPOSES + ("marketing", "", None)))
    headers = []
    if purpose is not None:
        headers.append((b"Purpose", purpose.encode()))
    if draw(st.integers(0, 9)) == 0:
        odd = _header_bytes(100) | st.integers(100, 4000).map(lambda n: b"p" * n)
        headers.append((b"Purpose", draw(odd)))
    authorization = draw(_bearer(credentials, purpose))
    if authorization is not None:
        headers.append((b"Authorization", authorization))
    request_id: str | None = f"fuzz-{next(_ids)}"
    how = draw(st.sampled_from(["sane"] * 6 + ["long", "spaces", "json", "empty", "missing"]))
    if how == "sane":
        headers.append((b"X-Request-Id", request_id.encode()))
    else:
        odd_ids = {
            "long": request_id.encode() + b"-" * draw(st.integers(120, 4000)),
            "spaces": request_id.encode() + b" \xe2\x80\xae <script>",
            "json": b'{"id": "' + request_id.encode() + b'"}',
            "empty": b"",
        }
        if how in odd_ids:
            headers.append((b"X-Request-Id", odd_ids[how]))
        request_id = None
    traceparent = draw(
        st.sampled_from(
            [
                None,
                None,
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                b"00-00000000000000000000000000000000-0000000000000000-00",
                b"ff-zz",
                b"01-" + b"a" * 500,
            ]
        )
        | _header_bytes(100)
    )
    if traceparent is not None:
        headers.append((b"traceparent", traceparent))
    return headers, request_id


@st.composite
def requests(
    draw, schema: GraphQLSchema, samples: Samples, credentials: Credentials, *, batches: bool
) -> FuzzRequest:
    """One GraphQL-over-HTTP request: a POST (JSON, batch or malformed) or a GET.

    Half are what a real client sends (its own purpose and token, a valid document of
    real lookups), so that the policy permits often enough for unaudited data to show.
    """
    if draw(st.booleans()):
        headers, request_id = draw(_headers(credentials, proper=True))
        document = draw(full_selections(schema, samples) | valid_documents(schema, samples))
        content = json.dumps({"query": document}).encode()
        headers.append((b"Content-Type", b"application/json"))
        return FuzzRequest("POST", content, (), tuple(headers), request_id, "well-formed")
    headers, request_id = draw(_headers(credentials, proper=draw(st.booleans())))
    shape = draw(st.sampled_from(["post"] * 6 + ["malformed", "get", "batch"]))
    if shape == "get":
        kind, body = draw(_operation_bodies(schema, samples))
        params = tuple(
            (key, value if isinstance(value, str) else json.dumps(value))
            for key, value in body.items()
            if isinstance(key, str) and _header_safe(key.encode("utf-8", "replace"))
        )
        assume(len(urlencode(params)) < MAX_URL_BYTES)  # beyond it the HTTP server refuses
        return FuzzRequest("GET", None, params, tuple(headers), request_id, f"get/{kind}")
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    if content_type:
        headers.append((b"Content-Type", content_type))
    if shape == "malformed":
        content = draw(_malformed_json())
        return FuzzRequest("POST", content, (), tuple(headers), request_id, "malformed")
    if shape == "batch" and batches:
        operations = draw(st.lists(_operation_bodies(schema, samples), min_size=0, max_size=12))
        content = json.dumps([body for _, body in operations]).encode()
        return FuzzRequest("POST", content, (), tuple(headers), request_id, "batch")
    kind, body = draw(_operation_bodies(schema, samples))
    content = json.dumps(body).encode()
    return FuzzRequest("POST", content, (), tuple(headers), request_id, kind)


FOUND_BEFORE = (
    "JSON body nested too deeply",
    "query nested too deeply in JSON",
    "GET variables nested too deeply",
    "variables nested deeply",
    "operationName naming no operation",
    "two operations and no operationName",
    "a lone surrogate in the variables",
    "a lone surrogate in a query literal",
    "a lone surrogate as the operationName",
)
"""Bad requests that once got a 500 (a RecursionError from ``json``; strawberry's error for
an operationName that picks no operation; a lone surrogate that cannot be encoded), kept
as fixed cases."""


def found_before(credentials: Credentials) -> dict[str, FuzzRequest]:
    """Requests the fuzzing once found a 5xx with, replayed on every run whatever is drawn."""
    purpose, token = "service-planning", credentials.by_purpose["service-planning"]
    headers = (
        (b"Purpose", purpose.encode()),
        (b"Authorization", b"Bearer " + token.encode()),
        (b"Content-Type", b"application/json"),
    )

    def post(content: bytes, name: str) -> FuzzRequest:
        request_id = f"fuzz-found-{name}-{next(_ids)}"
        sent = (*headers, (b"X-Request-Id", request_id.encode()))
        return FuzzRequest("POST", content, (), sent, request_id, name)

    def get(params: tuple[tuple[str, str], ...], name: str) -> FuzzRequest:
        request_id = f"fuzz-found-{name}-{next(_ids)}"
        sent = (*headers[:2], (b"X-Request-Id", request_id.encode()))
        return FuzzRequest("GET", None, params, sent, request_id, name)

    deep_variables = '{"a": ' + "[" * 5000 + "]" * 5000 + "}"
    found = {
        "JSON body nested too deeply": post(b"[" * 100_000, "deep-json"),
        "query nested too deeply in JSON": post(b'{"query": ' + b"[" * 100_000, "deep-json-query"),
        "GET variables nested too deeply": get(
            (("query", "{ __typename }"), ("variables", "[" * 1500)), "deep-get-variables"
        ),
        "variables nested deeply": post(
            b'{"query": "{ __typename }", "variables": ' + deep_variables.encode() + b"}",
            "deep-variables",
        ),
        "operationName naming no operation": get(
            (("query", "{ __typename }"), ("operationName", "Other")), "unknown-operation"
        ),
        "two operations and no operationName": post(
            json.dumps({"query": "query A { __typename } query B { __typename }"}).encode(),
            "two-operations",
        ),
    }
    codes = "query($c: [ID!]) { areas(codes: $c) { code } }"
    found["a lone surrogate in the variables"] = post(
        json.dumps({"query": codes, "variables": {"c": ["\ud800"]}}).encode(), "surrogate-var"
    )
    found["a lone surrogate in a query literal"] = post(
        json.dumps({"query": '{ areas(codes: ["\ud800"]) { code } }'}).encode(), "surrogate-query"
    )
    found["a lone surrogate as the operationName"] = post(
        json.dumps({"query": "{ __typename }", "operationName": "\udfff"}).encode(),
        "surrogate-name",
    )
    assert tuple(found) == FOUND_BEFORE
    return found
