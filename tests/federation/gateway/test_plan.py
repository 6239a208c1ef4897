from __future__ import annotations

import pytest

from datatrust.errors import QueryError
from datatrust.federation.gateway import (
    InvalidOperation,
    PlanCache,
    Supergraph,
    format_plan,
    plan_operation,
)

DEMO = """
query Demo {
  areas { code name footfall encounterCount openCareEpisodes }
}
"""

DEMO_PLAN = """QueryPlan {
  Sequence {
    Fetch(service: "a") {
      {
        areas {
          __typename
          code
          name
          footfall
        }
      }
    },
    Parallel {
      Flatten(path: "areas.@") {
        Fetch(service: "b") {
          {
            ... on Area {
              __typename
              code
            }
          } =>
          {
            ... on Area {
              encounterCount
            }
          }
        },
      },
      Flatten(path: "areas.@") {
        Fetch(service: "c") {
          {
            ... on Area {
              __typename
              code
            }
          } =>
          {
            ... on Area {
              openCareEpisodes
            }
          }
        },
      },
    },
  },
}"""


KEYS_FIRST = """
query Demo {
  areas { code name monthlyFootfall(month: 3) encounterCount openCareEpisodes }
}
"""

KEYS_FIRST_PLAN = """QueryPlan {
  Sequence {
    Fetch(service: "a") {
      {
        areas {
          __typename
          code
          name
        }
      }
    },
    Parallel {
      Flatten(path: "areas.@") {
        Fetch(service: "a") {
          {
            ... on Area {
              __typename
              code
            }
          } =>
          {
            ... on Area {
              monthlyFootfall(month: 3)
            }
          }
        },
      },
      Flatten(path: "areas.@") {
        Fetch(service: "b") {
          {
            ... on Area {
              __typename
              code
            }
          } =>
          {
            ... on Area {
              encounterCount
            }
          }
        },
      },
      Flatten(path: "areas.@") {
        Fetch(service: "c") {
          {
            ... on Area {
              __typename
              code
            }
          } =>
          {
            ... on Area {
              openCareEpisodes
            }
          }
        },
      },
    },
  },
}"""


def test_format_plan_of_the_demo_query_reads_like_an_apollo_query_plan(
    supergraph: Supergraph,
) -> None:
    assert format_plan(plan_operation(supergraph, DEMO, keys_first=False)) == DEMO_PLAN


def test_keys_first_asks_the_first_node_for_keys_then_every_node_at_once(
    supergraph: Supergraph,
) -> None:
    """The default plan: a's field with an argument (an aggregate, say) waits for the step
    b's and c's run in, so the three nodes' work runs together rather than a's first; the
    plain attribute ``name`` comes with the keys."""
    plan = plan_operation(supergraph, KEYS_FIRST)
    assert format_plan(plan) == KEYS_FIRST_PLAN
    assert [[fetch.service for fetch in step] for step in plan.steps] == [["a"], ["a", "b", "c"]]


def test_keys_first_changes_nothing_when_no_other_node_is_asked(supergraph: Supergraph) -> None:
    for query in (
        "{ areas { code name monthlyFootfall } }",
        "{ areas { name footfall encounterCount } }",  # nothing costly at a: nothing waits
    ):
        assert plan_operation(supergraph, query) == plan_operation(
            supergraph, query, keys_first=False
        )


def test_keys_first_keeps_the_plain_plan_when_an_alias_takes_a_keys_name(
    supergraph: Supergraph,
) -> None:
    query = "{ areas { code: monthlyFootfall(month: 2) encounterCount } }"
    assert plan_operation(supergraph, query) == plan_operation(supergraph, query, keys_first=False)


def test_the_plan_cache_plans_keys_first_unless_told_not_to(supergraph: Supergraph) -> None:
    assert len(PlanCache(supergraph).plan(KEYS_FIRST).steps[1]) == 3
    assert len(PlanCache(supergraph, keys_first=False).plan(KEYS_FIRST).steps[1]) == 2


def test_a_query_one_subgraph_answers_is_one_fetch_without_sequence(
    supergraph: Supergraph,
) -> None:
    plan = plan_operation(supergraph, "{ areas { name } }")
    assert format_plan(plan) == (
        'QueryPlan {\n  Fetch(service: "a") {\n    {\n      areas {\n        name\n'
        "      }\n    }\n  },\n}"
    )


def test_entity_fetch_declares_only_the_variables_it_uses(supergraph: Supergraph) -> None:
    plan = plan_operation(
        supergraph,
        "query Q($nation: String, $year: Int! = 2020) {"
        " areas(nation: $nation) { encounterCount(year: $year) } }",
    )
    assert [[(f.service, f.variables, f.operation) for f in step] for step in plan.steps] == [
        [
            (
                "a",
                ("nation",),
                (
                    "query($nation: String) {\n  areas(nation: $nation) {\n"
                    "    __typename\n    code\n  }\n}"
                ),
            )
        ],
        [
            (
                "b",
                ("year",),
                (
                    "query($representations: [_Any!]!, $year: Int! = 2020) {\n"
                    "  _entities(representations: $representations) {\n"
                    "    ... on Area {\n      encounterCount(year: $year)\n    }\n  }\n}"
                ),
            )
        ],
    ]


def test_named_and_inline_fragments_are_expanded_and_aliases_kept(
    supergraph: Supergraph,
) -> None:
    plan = plan_operation(
        supergraph,
        "{ areas { ...Counts ... on Area { label: name } } }"
        " fragment Counts on Area { seen: encounterCount }",
        keys_first=False,
    )
    assert [[f.operation for f in step] for step in plan.steps] == [
        ["{\n  areas {\n    __typename\n    code\n    label: name\n  }\n}"],
        [
            "query($representations: [_Any!]!) {\n"
            "  _entities(representations: $representations) {\n"
            "    ... on Area {\n      seen: encounterCount\n    }\n  }\n}"
        ],
    ]


def test_a_client_field_named_like_a_key_gets_the_key_under_another_alias(
    supergraph: Supergraph,
) -> None:
    plan = plan_operation(supergraph, "{ areas { code: name encounterCount } }")
    assert plan.steps[0][0].operation == (
        "{\n  areas {\n    __typename\n    _key_code: code\n    code: name\n  }\n}"
    )
    assert plan.steps[1][0].targets[0].keys == (("__typename", "__typename"), ("code", "_key_code"))


def test_two_paths_to_one_subgraph_share_one_entities_call(supergraph: Supergraph) -> None:
    plan = plan_operation(
        supergraph,
        'query($y: Int!) { areas { encounterCount(year: $y) } one: area(code: "S01008417") '
        "{ encounterCount } }",
    )
    (fetch,) = plan.steps[1]
    assert (fetch.service, [t.path for t in fetch.targets], fetch.targets[1].renames) == (
        "b",
        [("areas", "@"), ("one",)],
        (("_1_encounterCount", "encounterCount"),),
    )


def test_plan_lists_the_fields_the_operation_touches(supergraph: Supergraph) -> None:
    plan = plan_operation(supergraph, "{ __typename areas { __typename code encounterCount } }")
    assert plan.fields == frozenset(
        {("Query", "areas"), ("Area", "code"), ("Area", "encounterCount")}
    )


def test_validation_errors_carry_graphql_core_messages_and_locations(
    supergraph: Supergraph,
) -> None:
    with pytest.raises(InvalidOperation) as raised:
        plan_operation(supergraph, "{\n  areas { postcode }\n  nope\n}")
    assert [(e.message, e.details) for e in raised.value.errors] == [
        (
            "Cannot query field 'postcode' on type 'Area'. Did you mean 'code'?",
            {"locations": [{"line": 2, "column": 11}]},
        ),
        ("Cannot query field 'nope' on type 'Query'.", {"locations": [{"line": 3, "column": 3}]}),
    ]


def test_syntax_errors_are_query_errors_with_their_location(supergraph: Supergraph) -> None:
    with pytest.raises(QueryError, match=r"^Syntax Error: Expected Name, found <EOF>\.$") as raised:
        plan_operation(supergraph, "{ areas {")
    assert raised.value.details == {"locations": [{"line": 1, "column": 10}]}


def test_mutations_are_refused_with_a_query_error(supergraph: Supergraph) -> None:
    with pytest.raises(QueryError) as raised:
        plan_operation(supergraph, "mutation { areas { code } }")
    assert raised.value.message == "The mutation operation is not supported by the schema."


def test_plan_cache_reuses_a_plan_for_the_same_normalised_document(
    supergraph: Supergraph,
) -> None:
    cache = PlanCache(supergraph, max_size=1)
    first = cache.plan("{ areas { code } }")
    assert cache.plan("{\n  areas {\n    code\n  }\n}") is first
    cache.plan("{ areas { name } }")
    assert (len(cache), cache.plan("{ areas { code } }") is first) == (1, False)
