"""The enforcement point: decisions from the Rego, cached per shape, reloaded when published."""

from __future__ import annotations

import copy

import pytest

from datatrust.errors import AccessDenied, PurposeMissing, PurposeUnknown
from datatrust.policies import (
    AccessRequest,
    Decision,
    PolicyRuntime,
    PolicySnapshot,
    Requester,
    shipped_policy,
)

PLANNER = Requester(subject="ada", agency="council", roles=("analyst",), client_id="cli")
RESEARCHER = Requester(subject="rob", agency="university", roles=("researcher",), client_id="r")
AREA_COUNTS = frozenset({("Area", "code"), ("Area", "encounterCount")})
COHORT = frozenset({("Person", "pseudonym"), ("Person", "birthYear"), ("Person", "areaCode")})


class Source:
    """A policy source whose documents a test can change, as a DPO's publish would."""

    def __init__(self) -> None:
        self.snapshot = shipped_policy("v1")

    def __call__(self) -> PolicySnapshot:
        return self.snapshot

    def stamp(self) -> str:
        return self.snapshot.stamp

    def publish(self, stamp: str, change) -> None:
        agreements = copy.deepcopy(self.snapshot.agreements)
        change(agreements)
        self.snapshot = PolicySnapshot(stamp, f"test {stamp}", self.snapshot.register, agreements)


class CountingEngine:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.calls = 0

    @property
    def compiled(self) -> bool:
        return self.inner.compiled

    def decide(self, request: dict) -> Decision:
        self.calls += 1
        return self.inner.decide(request)


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
def engines() -> list[CountingEngine]:
    return []


@pytest.fixture
def runtime(source: Source, engines: list[CountingEngine]) -> PolicyRuntime:
    from datatrust.policies._engines import EmbeddedRegoEngine

    def factory(policy_dir, documents):
        engine = CountingEngine(EmbeddedRegoEngine(policy_dir, documents))
        engines.append(engine)
        return engine

    return PolicyRuntime(source, source.stamp, engine_factory=factory, check_interval=0)


def ask(runtime, purpose="service-planning", fields=AREA_COUNTS, who=PLANNER, node="health"):
    aggregate = not any(t in {"Person", "Encounter", "CareEpisode"} for t, _ in fields)
    request = AccessRequest(
        purpose=purpose, node=node, fields=fields, requester=who, aggregate=aggregate
    )
    return runtime.decide(request)


def test_a_planning_analyst_gets_area_aggregates_with_the_agreements_obligations(runtime):
    permit = ask(runtime)
    assert (permit.agreement, permit.obligations.aggregate_only) == (
        "dsa-planning-area-statistics",
        True,
    )
    assert (permit.obligations.min_cell, permit.obligations.round_to) == (10, 5)
    assert permit.policy_version == "test v1" or permit.policy_version.startswith("shipped")


def test_a_researcher_gets_a_consented_opted_out_cohort_with_masks(runtime):
    permit = ask(runtime, "research", COHORT, RESEARCHER)
    kinds = [f["kind"] for f in permit.obligations.row_filters]
    assert kinds == ["consent", "national_data_opt_out", "agreement_period"]
    assert permit.obligations.mask == ("Person.areaCode",)
    assert permit.obligations.pseudonymise == ("Person.pseudonym",)


def test_record_level_fields_are_refused_for_planning_naming_the_agreement(runtime):
    with pytest.raises(AccessDenied, match=r"dsa-planning-area-statistics does not share field"):
        ask(runtime, fields=COHORT)


def test_a_purpose_the_token_does_not_allow_is_refused_before_policy(runtime, engines):
    who = Requester(agency="council", roles=("analyst",), purposes=("research",))
    with pytest.raises(AccessDenied, match="your access token does not allow purpose"):
        ask(runtime, who=who)
    assert engines[0].calls == 0


def test_missing_and_unknown_purposes_are_refused(runtime):
    with pytest.raises(PurposeMissing):
        ask(runtime, purpose=None)
    with pytest.raises(PurposeUnknown):
        ask(runtime, purpose="marketing")


def test_each_request_shape_is_evaluated_once_then_served_from_the_cache(runtime, engines):
    for _ in range(50):
        ask(runtime)
        with pytest.raises(AccessDenied):
            ask(runtime, fields=COHORT)
    assert engines[-1].calls == 2
    assert (
        runtime.cached(
            AccessRequest(
                purpose="service-planning", node="health", fields=AREA_COUNTS, requester=PLANNER
            )
        )
        is not None
    )


def test_a_published_narrowing_takes_effect_at_the_next_request(runtime, source):
    ask(runtime)

    def drop_health_counts(agreements):
        for agreement in agreements["agreements"]:
            for dataset in agreement["datasets"]:
                dataset["fields"] = [
                    f for f in dataset["fields"] if f["field"] != "Area.encounterCount"
                ]

    source.publish("v2", drop_health_counts)
    with pytest.raises(AccessDenied, match=r"does not share field Area\.encounterCount") as refused:
        ask(runtime)
    assert "policy test v2" in refused.value.message


def test_a_version_that_does_not_load_leaves_the_last_good_one_in_force(runtime, source):
    def corrupt(agreements):
        agreements["agreements"][0]["datasets"] = "not a list"

    source.publish("v2", corrupt)
    assert ask(runtime).agreement == "dsa-planning-area-statistics"
    assert runtime.load_error is not None


def test_an_engine_that_raises_denies(source):
    class Broken:
        compiled = True

        def decide(self, request):
            raise RuntimeError("boom")

    runtime = PolicyRuntime(source, source.stamp, engine_factory=lambda *a: Broken())
    with pytest.raises(AccessDenied, match=r"could not be evaluated \(RuntimeError\)"):
        ask(runtime)


def test_with_no_policy_loadable_every_request_is_refused():
    def nothing():
        raise FileNotFoundError("no policy")

    runtime = PolicyRuntime(nothing, lambda: None)
    with pytest.raises(AccessDenied, match="no data-use policy in force"):
        ask(runtime)


def test_a_cached_permit_never_stands_in_for_a_token_that_does_not_allow_the_purpose(runtime):
    ask(runtime)
    narrow = Requester(
        agency="council", roles=("analyst",), client_id="cli", purposes=("research",)
    )
    request = AccessRequest(
        purpose="service-planning", node="health", fields=AREA_COUNTS, requester=narrow
    )
    assert runtime.cached(request) is None
    with pytest.raises(AccessDenied, match="does not allow purpose"):
        runtime.decide(request)


def test_an_engine_failure_is_not_remembered_and_the_engine_is_rebuilt(source):
    """An OPA that restarted has lost its policy: the node must not refuse all day."""
    built = []

    class Flaky:
        compiled = True

        def __init__(self) -> None:
            self.fail = not built  # the first engine fails, its rebuilt successor decides
            built.append(self)

        def decide(self, request):
            if self.fail:
                return Decision.failure("the OPA server gave no answer (ConnectError)")
            return Decision(allow=True, reasons=("ok",), agreement="a", policy_version="v1")

    runtime = PolicyRuntime(
        source, source.stamp, engine_factory=lambda *a: Flaky(), check_interval=0
    )
    with pytest.raises(AccessDenied, match="gave no answer"):
        ask(runtime)
    assert ask(runtime).agreement == "a"
    assert len(built) == 2
