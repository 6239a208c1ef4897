from graphql import build_schema, parse

from datatrust.federation import operation_access

SCHEMA = build_schema(
    """
    type Query { areas: [Area!]! _service: Service! }
    type Service { sdl: String! }
    type Area { code: ID! name: String airQuality: AirQuality }
    type AirQuality { pm25Mean: Float }
    """
)


def test_fields_in_fragments_and_nested_types_are_all_reported():
    document = parse(
        "{ areas { code ...F airQuality { pm25Mean } __typename } } fragment F on Area { name }"
    )
    access = operation_access(SCHEMA, document)
    assert access.fields == {
        ("Query", "areas"),
        ("Area", "code"),
        ("Area", "name"),
        ("Area", "airQuality"),
        ("AirQuality", "pm25Mean"),
    }
    assert not access.is_metadata_only


def test_service_sdl_and_introspection_are_metadata_only():
    access = operation_access(SCHEMA, parse("{ _service { sdl } __schema { types { name } } }"))
    assert access.is_metadata_only
    assert access.fields == frozenset()
