"""Each node's subgraph keeps Apollo's subgraph specification (Federation 2.7).

Two parts: the SDL each node publishes at ``_service { sdl }`` (the federation version it
links, the directives it imports and where it uses them), and ``_entities`` answering a
bad representation with an error for that entity alone. The subgraph specification has
``_entities(representations: [_Any!]!): [_Entity]!``: one result per representation, in
order, each nullable, so an entity that cannot be resolved is ``null`` with an error at
``["_entities", i]`` and every other entity is still answered.
"""

from __future__ import annotations

from collections import Counter

import pytest
from graphql import DirectiveNode, ObjectTypeDefinitionNode, ObjectTypeExtensionNode, parse
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from datatrust import _prepare
from datatrust.federation.subgraphs import FEDERATION_VERSION, SUBGRAPH_MODULES, subgraph_schema
from datatrust.federation.subgraphs._pseudonyms import PseudonymCodec
from datatrust.node import create_node_app, node_keys
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import Person, create_store_engine
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

FEDERATION_LINK = "https://specs.apollo.dev/federation/v2.7"
FEDERATION_DIRECTIVES = frozenset(
    {
        "key",
        "shareable",
        "external",
        "requires",
        "provides",
        "override",
        "inaccessible",
        "tag",
        "interfaceObject",
        "composeDirective",
        "authenticated",
        "requiresScopes",
        "policy",
        "cost",
        "listSize",
    }
)
NODES = tuple(SUBGRAPH_MODULES)


def published_sdl(node_id: str) -> str:
    result = subgraph_schema(node_id).execute_sync("{ _service { sdl } }")
    assert result.errors is None
    return result.data["_service"]["sdl"]


def links(sdl: str) -> list[DirectiveNode]:
    return [
        directive
        for definition in parse(sdl).definitions
        if definition.kind in ("schema_definition", "schema_extension")
        for directive in definition.directives or ()
        if directive.name.value == "link"
    ]


def argument(directive: DirectiveNode, name: str):
    for given in directive.arguments or ():
        if given.name.value == name:
            return given.value
    return None


def used_directives(sdl: str) -> Counter[str]:
    """Federation directives applied anywhere in ``sdl`` except the schema's @link."""
    used: Counter[str] = Counter()

    def walk(node) -> None:
        if isinstance(node, DirectiveNode):
            if node.name.value in FEDERATION_DIRECTIVES:
                used["@" + node.name.value] += 1
            return
        for key in getattr(node, "keys", ()):
            value = getattr(node, key, None)
            for child in value if isinstance(value, tuple) else (value,):
                if hasattr(child, "kind"):
                    walk(child)

    walk(parse(sdl))
    return used


def object_types(sdl: str):
    """The object types of ``sdl``, without the spec's own (``_Service``)."""
    for definition in parse(sdl).definitions:
        if isinstance(
            definition, ObjectTypeDefinitionNode | ObjectTypeExtensionNode
        ) and not definition.name.value.startswith("_"):
            yield definition


def names(directives) -> set[str]:
    return {d.name.value for d in directives or ()}


def key_fields(definition) -> set[str]:
    return {
        field
        for directive in definition.directives or ()
        if directive.name.value == "key"
        for field in argument(directive, "fields").value.split()
    }


@pytest.mark.parametrize("node_id", NODES)
def test_each_node_links_federation_2_7_exactly_once(node_id):
    found = links(published_sdl(node_id))
    assert FEDERATION_VERSION == "2.7"
    assert [argument(link, "url").value for link in found] == [FEDERATION_LINK]


@pytest.mark.parametrize("node_id", NODES)
def test_each_node_imports_exactly_the_federation_directives_it_uses(node_id):
    sdl = published_sdl(node_id)
    (link,) = links(sdl)
    imported = [value.value for value in argument(link, "import").values]
    assert len(imported) == len(set(imported))
    assert set(imported) == set(used_directives(sdl))


@pytest.mark.parametrize("node_id", NODES)
def test_each_node_resolves_the_shared_entities_by_their_agreed_keys(node_id):
    keys = {d.name.value: key_fields(d) for d in object_types(published_sdl(node_id))}
    assert keys["Area"] == {"code"}
    if "Person" in keys:
        assert keys["Person"] == {"pseudonym"}
    entities = {name for name, fields in keys.items() if fields}
    assert entities == ({"Area"} if node_id == "council" else {"Area", "Person"})


def test_a_field_two_nodes_define_is_a_key_or_shareable_in_both_and_shareable_only_then():
    """Apollo composition refuses a field resolved by two subgraphs unless it is @shareable.

    And @shareable on a field only one node defines would claim a sharing that is not
    there (a later node could then silently answer it differently), so it is refused too.
    """
    definitions: dict[tuple[str, str], list[tuple[str, bool, bool]]] = {}
    for node_id in NODES:
        for definition in object_types(published_sdl(node_id)):
            type_shared = "shareable" in names(definition.directives)
            keys = key_fields(definition)
            for field in definition.fields or ():
                if definition.name.value == "Query" and field.name.value.startswith("_"):
                    continue  # _entities and _service: every subgraph's, by the spec
                shared = type_shared or "shareable" in names(field.directives)
                where = (definition.name.value, field.name.value)
                definitions.setdefault(where, []).append(
                    (node_id, shared, field.name.value in keys)
                )
    for (type_name, field), found in definitions.items():
        several = len(found) > 1
        for node_id, shared, is_key in found:
            if several and not is_key:
                assert shared, f"{type_name}.{field} at {node_id} is not @shareable"
            if shared:
                assert several, f"{type_name}.{field} is @shareable but only {node_id} has it"
    shared_keys = {where for where, found in definitions.items() if len(found) == 3}
    assert shared_keys == {("Area", "code")}


def test_requires_names_only_fields_external_here_and_resolved_by_another_node():
    """No node's field is computed from another node's data today, so none uses @requires.

    Each field reads its own node's store; the cross-agency counts are the gateway's own
    protocol over opaque tokens, not a field that @requires another node's fields. Should
    a field ever need one, this holds it to Federation's rule: what it @requires is
    @external here and resolved by a node that owns it.
    """
    owned: dict[tuple[str, str], set[str]] = {}
    requirements = []
    for node_id in NODES:
        for definition in object_types(published_sdl(node_id)):
            for field in definition.fields or ():
                directives = names(field.directives)
                if "external" not in directives:
                    owned.setdefault((definition.name.value, field.name.value), set()).add(node_id)
                for directive in field.directives or ():
                    if directive.name.value == "requires":
                        fields = argument(directive, "fields").value.split()
                        requirements.append((node_id, definition, fields))
    for node_id, definition, fields in requirements:
        here = {f.name.value: names(f.directives) for f in definition.fields or ()}
        for name in fields:
            assert "external" in here.get(name, set()), (node_id, definition.name.value, name)
            assert owned.get((definition.name.value, name), set()) - {node_id}
    assert requirements == []  # see the docstring; a new @requires must update this


# -- _entities: one bad representation fails alone ---------------------------------------

AREA_QUERY = (
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Area { code encounterCount } } }"
)
PERSON_QUERY = (
    "query($r: [_Any!]!) { _entities(representations: $r) "
    "{ ... on Person { pseudonym birthYear encounters { classCode } } } }"
)
GOOD_AREA = {"__typename": "Area", "code": "E01009522"}


@pytest.fixture(scope="module")
def health(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("trust")
    with trust_identity(tmp_path_factory.mktemp("identity")) as identity:
        sources = _prepare.write_demo_files(data_dir)
        settings = load_settings(
            NodeSettings,
            environ={},
            node_id="health",
            agency="NHS",
            data_dir=data_dir,
            issuers=identity.issuers,
        )
        url = settings.effective_database_url
        _prepare.prepare_demo_node(data_dir, "health", url, sources["health"])
        with app_client(create_node_app(settings)) as client:
            client.url = url
            client.identity = identity
            client.codec = PseudonymCodec(node_keys(data_dir).pseudonym_key)
            yield client


def ask(node, query, representations, client="analyst-cli", purpose="service-planning"):
    """The node's answer, and how many statements read agency data to give it."""
    reads: list[str] = []

    def record(connection, cursor, statement, *args):
        if any(f"FROM {table}" in statement for table in ("encounter", "person")):
            reads.append(statement)

    headers = node.identity.headers_for(client, purpose)
    event.listen(Engine, "before_cursor_execute", record)
    try:
        response = node.post(
            "/graphql",
            json={"query": query, "variables": {"r": representations}},
            headers=headers,
        )
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    assert response.status_code == 200, response.text
    return response.json(), len(reads)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"__typename": "Hospital", "code": "RKB"},
            "unknown entity type 'Hospital'; this subgraph resolves: Area, Person",
        ),
        (
            {"__typename": ["Area"], "code": "E01009522"},
            "unknown entity type ['Area']; this subgraph resolves: Area, Person",
        ),
        (
            {"code": "E01009522"},
            "unknown entity type None; this subgraph resolves: Area, Person",
        ),
        (
            {"__typename": "Area"},
            "Area is looked up by exactly its key (code); got fields none",
        ),
        (
            {"__typename": "Area", "gss": "E01009522"},
            "Area is looked up by exactly its key (code); got fields gss",
        ),
        (
            {"__typename": "Area", "code": "E01009522", "name": "Coventry 014A"},
            "Area is looked up by exactly its key (code); got fields code, name",
        ),
        (
            {"__typename": "Area", "code": 1009522},
            "Area.code must be a string (an ID), got int 1009522",
        ),
        (
            {"__typename": "Area", "code": "Coventry 014A"},
            "Area.code 'Coventry 014A' is not a GSS small-area code such as E01009522",
        ),
        (
            "E01009522",
            "a representation must be an object with __typename and its key fields",
        ),
    ],
    ids=[
        "unknown type",
        "typename not a string",
        "no typename",
        "missing key",
        "another key",
        "extra field",
        "key of the wrong type",
        "malformed key",
        "not an object",
    ],
)
def test_a_bad_area_representation_gets_its_own_error_and_the_rest_one_query(health, bad, message):
    second = {"__typename": "Area", "code": "E01009523"}
    body, reads = ask(health, AREA_QUERY, [GOOD_AREA, bad, second])
    first, failed, last = body["data"]["_entities"]
    assert (first["code"], failed, last["code"]) == ("E01009522", None, "E01009523")
    assert first["encounterCount"] is not None
    assert [(e["path"], e["message"]) for e in body["errors"]] == [
        (["_entities", 1], f"representations[1]: {message}")
    ]
    assert reads == 1


def test_bad_person_representations_fail_alone_under_a_pseudonymising_agreement(health):
    engine = create_store_engine(health.url)
    with engine.connect() as connection:
        people = connection.execute(select(Person.pseudonym).order_by(Person.pseudonym)).scalars()
        trust_pseudonym, *others = list(people)[:50]
    engine.dispose()
    research = [
        {"__typename": "Person", "pseudonym": health.codec.encode(p, "dsa-research-cohort")}
        for p in others
    ]
    elsewhere = health.codec.encode(trust_pseudonym, "dsa-another-agreement")
    bad = [
        {"__typename": "Person", "pseudonym": trust_pseudonym},
        {"__typename": "Person", "pseudonym": elsewhere},
        {"__typename": "Person", "pseudonym": 42},
        {"__typename": "Person", "pseudonym": research[0]["pseudonym"], "birthYear": 1970},
    ]
    body, reads = ask(health, PERSON_QUERY, bad + research, "research-cli", "research")
    entities = body["data"]["_entities"]
    assert entities[:4] == [None] * 4
    assert [e["pseudonym"] for e in entities[4:]] == [r["pseudonym"] for r in research]
    assert any(e["birthYear"] for e in entities[4:])
    not_ours = (
        "Person.pseudonym is not one agreement dsa-research-cohort gives (r-...); "
        "use a pseudonym a node returned under that agreement"
    )
    assert sorted((tuple(e["path"]), e["message"]) for e in body["errors"]) == [
        (("_entities", 0), not_ours),
        (("_entities", 1), not_ours),
        (
            ("_entities", 2),
            "representations[2]: Person.pseudonym must be a string (an ID), got int 42",
        ),
        (
            ("_entities", 3),
            "representations[3]: Person is looked up by exactly its key (pseudonym); "
            "got fields birthYear, pseudonym",
        ),
    ]
    assert reads == 2  # one for the people, one for their encounters


def test_a_pseudonym_not_in_trust_form_fails_alone_where_the_agreement_gives_them(health):
    engine = create_store_engine(health.url)
    with engine.connect() as connection:
        known = connection.execute(select(Person.pseudonym).limit(1)).scalar_one()
    engine.dispose()
    representations = [
        {"__typename": "Person", "pseudonym": "r-not-a-trust-pseudonym"},
        {"__typename": "Person", "pseudonym": known},
    ]
    query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on Person { pseudonym } } }"
    body, _ = ask(health, query, representations, "care-cli", "direct-care")
    assert body["data"]["_entities"] == [None, {"pseudonym": known}]
    (error,) = body["errors"]
    assert error["path"] == ["_entities", 0]
    assert error["message"].startswith(
        "Person.pseudonym is not a trust pseudonym (p- or l- and 32 hex digits)"
    )
