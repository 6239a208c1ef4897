from __future__ import annotations

import pytest

from datatrust.errors import SourceError
from datatrust.federation.gateway import CompositionError, Supergraph, compose

HEADER = (
    'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", '
    'import: ["@key", "@shareable", "@external"])\n'
)


def _sdl(body: str) -> str:
    return HEADER + body


def test_composes_the_three_subgraphs_into_one_api_schema(supergraph: Supergraph) -> None:
    assert supergraph.sdl == (
        "type Area {\n"
        "  code: ID!\n"
        "  name: String!\n"
        "  footfall: Int!\n"
        "  monthlyFootfall(month: Int! = 1): Int!\n"
        "  encounterCount(year: Int! = 2024): Int!\n"
        "  openCareEpisodes: Int!\n"
        "}\n"
        "\n"
        "type Query {\n"
        "  areas(nation: String = null): [Area!]!\n"
        "  area(code: ID!): Area\n"
        "}"
    )


def test_records_which_subgraphs_resolve_each_field_and_by_which_keys(
    supergraph: Supergraph,
) -> None:
    assert dict(supergraph.owners) == {
        ("Area", "code"): ("a", "b", "c"),
        ("Area", "name"): ("a",),
        ("Area", "footfall"): ("a",),
        ("Area", "monthlyFootfall"): ("a",),
        ("Area", "encounterCount"): ("b",),
        ("Area", "openCareEpisodes"): ("c",),
        ("Query", "areas"): ("a",),
        ("Query", "area"): ("a",),
    }
    assert {name: dict(keys) for name, keys in supergraph.keys.items()} == {
        "Area": {"a": (("code",),), "b": (("code",),), "c": (("code",),)}
    }


def test_accepts_a_field_that_every_resolving_subgraph_marks_shareable() -> None:
    supergraph = compose(
        {
            "a": _sdl(
                'type Area @key(fields: "code") { code: ID! name: String @shareable }\n'
                "type Query { areas: [Area] }"
            ),
            "b": _sdl('type Area @key(fields: "code") { code: ID! name: String @shareable }'),
        }
    )
    assert supergraph.owners_of("Area", "name") == ("a", "b")


def test_composition_error_is_a_source_error_with_its_own_code() -> None:
    with pytest.raises(SourceError) as raised:
        compose({})
    assert (type(raised.value), raised.value.code, raised.value.status_hint) == (
        CompositionError,
        "COMPOSITION_FAILED",
        503,
    )


@pytest.mark.parametrize(
    ("subgraphs", "message"),
    [
        pytest.param(
            {
                "a": _sdl(
                    'type Area @key(fields: "code") { code: ID! footfall: Int! }\n'
                    "type Query { areas: [Area!]! }"
                ),
                "b": _sdl(
                    'type Area @key(fields: "code") { code: ID! footfall: String @shareable }'
                ),
            },
            "Area.footfall has different types: Int! in subgraph 'a', String in subgraph 'b'; "
            "declare it with the same types in every subgraph",
            id="field types differ",
        ),
        pytest.param(
            {
                "a": _sdl(
                    'type Area @key(fields: "code") { code: ID! name: String @shareable }\n'
                    "type Query { areas: [Area!]! }"
                ),
                "b": _sdl('type Area @key(fields: "code") { code: ID! name: String }'),
            },
            "Area.name is resolved by subgraphs 'a' and 'b' but is not marked @shareable in 'b'; "
            "mark it @shareable in every subgraph that resolves it, or keep it in one subgraph",
            id="field not shareable",
        ),
        pytest.param(
            {
                "a": _sdl(
                    'type Area @key(fields: "code") { code: ID! name: String }\n'
                    "type Query { areas: [Area!]! }"
                ),
                "b": _sdl('type Area @key(fields: "gss") { gss: ID! encounterCount: Int }'),
            },
            "Area @key(fields: \"code\") in subgraph 'a' uses field 'code', which subgraph 'b' "
            "does not define on Area; define it there or change the key",
            id="key field missing",
        ),
        pytest.param(
            {
                "a": _sdl("type Query { areaCount: Int }"),
                "b": _sdl("type Query { areaCount: Int }"),
            },
            "Query.areaCount is resolved by subgraphs 'a' and 'b' but is not marked @shareable "
            "in 'a' and 'b'; mark it @shareable in every subgraph that resolves it, or keep it "
            "in one subgraph",
            id="root field twice",
        ),
        pytest.param(
            {
                "a": _sdl(
                    "type Period { start: String @shareable }\ntype Query { period: Period }"
                ),
                "b": _sdl("type Period { start: String @shareable end: String }"),
            },
            "Period.end is defined in subgraph 'b' but not in subgraph 'a', and Period has no "
            "@key; define the same fields in every subgraph, or make Period an entity with @key",
            id="value type fields differ",
        ),
        pytest.param(
            {
                "a": _sdl("enum Nation { ENGLAND SCOTLAND }\ntype Query { nation: Nation }"),
                "b": _sdl("enum Nation { ENGLAND WALES }"),
            },
            "Nation is defined differently in subgraphs 'a' and 'b'; "
            "define it identically in every subgraph",
            id="enum differs",
        ),
        pytest.param(
            {
                "a": _sdl("type Query { nation: Nation }\nscalar Nation"),
                "b": _sdl("enum Nation { WALES }"),
            },
            "type Nation is a scalar in subgraph 'a' but an enum in subgraph 'b'; "
            "define it the same way in both",
            id="kinds differ",
        ),
        pytest.param(
            {"a": _sdl("type Query { areas: [Area!]! ")},
            "subgraph 'a' SDL does not parse: Syntax Error: Expected Name, found <EOF>.",
            id="sdl does not parse",
        ),
        pytest.param(
            {"a": _sdl('type Area @key(fields: "code") { code: ID! }')},
            "no subgraph defines a root Query field; add one to a subgraph",
            id="no root fields",
        ),
        pytest.param(
            {
                "a": _sdl(
                    'type Person @key(fields: "pseudonym", resolvable: false) { pseudonym: ID! }\n'
                    "type Query { cohort: [Person!]! }"
                ),
                "b": _sdl('type Area @key(fields: "code") { code: ID! }'),
            },
            "Person @key(fields: \"pseudonym\", resolvable: false) in subgraph 'a' refers to "
            "Person entities by that key, but no subgraph resolves Person by it; add "
            '@key(fields: "pseudonym") to the subgraph that owns Person',
            id="key no subgraph resolves",
        ),
        pytest.param(
            {
                "a": _sdl(
                    'type Person @key(fields: "pseudonym", resolvable: false) '
                    "{ pseudonym: ID! }\ntype Query { cohort: [Person!]! }"
                ),
                "b": _sdl(
                    'type Person @key(fields: "pseudonym", resolvable: false) { pseudonym: ID! }'
                ),
            },
            "Person @key(fields: \"pseudonym\", resolvable: false) in subgraph 'a' refers to "
            "Person entities by that key, but no subgraph resolves Person by it; add "
            '@key(fields: "pseudonym") to the subgraph that owns Person',
            id="key every subgraph only refers to",
        ),
        pytest.param(
            {"a": "type Query { areas: [String] }"},
            "subgraph 'a' does not link Apollo Federation 2 (a Federation 1 subgraph?); add "
            'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", '
            'import: ["@key"])',
            id="federation 1",
        ),
        pytest.param(
            {
                "a": 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", '
                'import: ["@key"])\ntype Query { areas: [String] }'
            },
            "subgraph 'a' links Federation v2.9; this gateway composes v2.0 to v2.7: link "
            '"https://specs.apollo.dev/federation/v2.7"',
            id="federation newer than 2.7",
        ),
        pytest.param(
            {
                "a": 'extend schema @link(url: "https://specs.apollo.dev/federation/v1.0")\n'
                "type Query { areas: [String] }"
            },
            "subgraph 'a' links Federation v1.0; this gateway composes v2.0 to v2.7: link "
            '"https://specs.apollo.dev/federation/v2.7"',
            id="federation v1 link",
        ),
        pytest.param(
            {
                "a": _sdl(
                    'extend schema @link(url: "https://specs.apollo.dev/connect/v0.1", '
                    'import: ["@connect"])\ntype Query { areas: [String] }'
                )
            },
            "subgraph 'a' links https://specs.apollo.dev/connect/v0.1, which this gateway does "
            'not support; link only "https://specs.apollo.dev/federation/v2.7"',
            id="unsupported link",
        ),
        pytest.param(
            {
                "a": HEADER + HEADER.replace("v2.7", "v2.6") + "type Query { areas: [String] }",
            },
            "subgraph 'a' links Federation 2 times (v2.7, v2.6); link it once",
            id="linked twice",
        ),
        pytest.param(
            {
                "a": 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", '
                'import: ["@key", "@authenticated"])\ntype Query { areas: [String] }'
            },
            "subgraph 'a' imports @authenticated, which needs Federation v2.5, but links "
            "v2.3; link v2.5 or later",
            id="import newer than the link",
        ),
        pytest.param(
            {
                "a": 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", '
                'import: ["@key", "@context"])\ntype Query { areas: [String] }'
            },
            "subgraph 'a' imports '@context', which is not in Federation v2.7 as this gateway "
            "knows it; import only: @key, @shareable, @external, @requires, @provides, "
            "@override, @inaccessible, @tag, @extends, FieldSet, @composeDirective, "
            "@interfaceObject, @authenticated, @requiresScopes, Scope, @policy, Policy",
            id="unknown import",
        ),
        pytest.param(
            {
                "a": 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", '
                'import: [{name: "@key", as: "@primaryKey"}])\ntype Query { areas: [String] }'
            },
            "subgraph 'a' imports @key renamed as @primaryKey; this gateway reads federation "
            "directives by their own names, so import them without 'as'",
            id="renamed import",
        ),
    ],
)
def test_refuses_subgraphs_that_do_not_compose(subgraphs: dict[str, str], message: str) -> None:
    with pytest.raises(CompositionError) as raised:
        compose(subgraphs)
    assert raised.value.message == message


def test_descriptions_are_kept_in_the_api_schema_but_ignored_when_comparing_types() -> None:
    supergraph = compose(
        {
            "a": _sdl(
                '"""Nations of the UK"""\nenum Nation { """England""" ENGLAND SCOTLAND }\n'
                'type Query { areaCount("""which nation""" nation: Nation): Int }'
            ),
            "b": _sdl(
                'enum Nation { ENGLAND SCOTLAND }\ntype Area @key(fields: "code") { code: ID! }'
            ),
        }
    )
    assert supergraph.sdl == (
        '"""Nations of the UK"""\n'
        "enum Nation {\n"
        '  """England"""\n'
        "  ENGLAND\n"
        "  SCOTLAND\n"
        "}\n"
        "\n"
        "type Query {\n"
        "  areaCount(\n"
        '    """which nation"""\n'
        "    nation: Nation\n"
        "  ): Int\n"
        "}\n"
        "\n"
        "type Area {\n"
        "  code: ID!\n"
        "}"
    )
