"""The gateway over the demo trust's own subgraphs: people joined across health and social care.

``Person @key(fields: "pseudonym")`` is an entity at the health node (``Query.patients``,
encounters) and at the social-care node (``Query.careRecipients``, care episodes), so a
research question about both is one root fetch at the node that owns the root field and one
batched ``_entities`` fetch at the other.
"""

from __future__ import annotations

import pytest

from datatrust.federation.gateway import Supergraph, compose, format_plan, plan_operation
from datatrust.federation.subgraphs import SUBGRAPH_MODULES, subgraph_schema

RESEARCH = "{ patients(first: 50) { pseudonym birthYear careEpisodes { serviceType start } } }"
RESEARCH_PLAN = """QueryPlan {
  Sequence {
    Fetch(service: "health") {
      {
        patients(first: 50) {
          __typename
          pseudonym
          birthYear
        }
      }
    },
    Flatten(path: "patients.@") {
      Fetch(service: "social-care") {
        {
          ... on Person {
            __typename
            pseudonym
          }
        } =>
        {
          ... on Person {
            careEpisodes {
              serviceType
              start
            }
          }
        }
      },
    },
  },
}"""


@pytest.fixture(scope="module")
def demo() -> Supergraph:
    return compose({node: subgraph_schema(node).as_str() for node in SUBGRAPH_MODULES})


def test_person_is_one_entity_resolved_by_key_at_health_and_social_care(demo: Supergraph) -> None:
    assert demo.keys["Person"] == {"health": (("pseudonym",),), "social-care": (("pseudonym",),)}
    assert demo.owners_of("Query", "patients") == ("health",)
    assert demo.owners_of("Query", "careRecipients") == ("social-care",)
    assert demo.owners_of("Person", "encounters") == ("health",)
    assert demo.owners_of("Person", "careEpisodes") == ("social-care",)


def test_a_research_query_is_a_health_root_fetch_then_social_care_entities(
    demo: Supergraph,
) -> None:
    assert format_plan(plan_operation(demo, RESEARCH)) == RESEARCH_PLAN


def test_the_join_runs_the_other_way_from_social_care_roots(demo: Supergraph) -> None:
    plan = plan_operation(demo, "{ careRecipients { pseudonym encounters { start } } }")
    assert [[(f.service, f.operation) for f in step] for step in plan.steps] == [
        [("social-care", "{\n  careRecipients {\n    __typename\n    pseudonym\n  }\n}")],
        [
            (
                "health",
                "query($representations: [_Any!]!) {\n"
                "  _entities(representations: $representations) {\n"
                "    ... on Person {\n      encounters {\n        start\n      }\n    }\n  }\n}",
            )
        ],
    ]


def test_the_plan_lists_every_record_field_the_gateway_decides_on(demo: Supergraph) -> None:
    assert plan_operation(demo, RESEARCH).fields == frozenset(
        {
            ("Query", "patients"),
            ("Person", "pseudonym"),
            ("Person", "birthYear"),
            ("Person", "careEpisodes"),
            ("CareEpisode", "serviceType"),
            ("CareEpisode", "start"),
        }
    )
