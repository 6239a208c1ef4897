"""The DPO's lifecycle: the versioned store, review, diff, dry run, rollback, validation."""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from datatrust.errors import AccessDenied
from datatrust.policies import Requester
from datatrust.policies._engines import EmbeddedRegoEngine
from datatrust.policies._platform import PlatformAuthorizer
from datatrust.policies.documents import demo_agreements, demo_register, rego_data
from datatrust.policies.lifecycle import (
    AuditedRequest,
    PolicyInvalid,
    PolicyStepRefused,
    PolicyStoreCorrupt,
    _store,
    approve_draft,
    create_draft,
    current_stamp,
    decision_input,
    default_policy_dir,
    diff_documents,
    dry_run,
    ensure_initial_version,
    publish_draft,
    read_draft,
    read_published,
    reject_draft,
    rollback,
    submit_draft,
    validate_policy,
    version_numbers,
)

AUTHORIZE = PlatformAuthorizer().authorize
DANA = Requester(subject="dana", agency="health", roles=("dpo",))
BO = Requester(subject="bo", agency="health", roles=("dpo",))
CY = Requester(subject="cy", agency="council", roles=("dpo",))
PLANNING = "dsa-planning-area-statistics"
RESEARCH = "dsa-research-cohort"


def agreement(agreements: dict, ident: str) -> dict:
    """One agreement of the documents, by id (their order is the DPOs' to choose)."""
    return next(a for a in agreements["agreements"] if a["id"] == ident)


def index(agreements: dict, ident: str) -> int:
    return agreements["agreements"].index(agreement(agreements, ident))


def dataset(agreements: dict, ident: str, node: str) -> dict:
    return next(d for d in agreement(agreements, ident)["datasets"] if d["node"] == node)


def narrowed(agreements: dict) -> dict:
    """The planning agreement no longer shares health's encounter counts."""
    changed = copy.deepcopy(agreements)
    health = dataset(changed, PLANNING, "health")
    health["fields"] = [f for f in health["fields"] if f["field"] != "Area.encounterCount"]
    return changed


VERSIONS = f"agreements {demo_agreements()['version']}, purposes {demo_register()['version']}"


def planning_query(at: datetime) -> AuditedRequest:
    return AuditedRequest(
        recorded_at=at,
        node="health",
        agency="council",
        roles=("analyst",),
        client_id="analyst-cli",
        purpose="service-planning",
        fields=("Area.code", "Area.encounterCount"),
        aggregate=True,
        outcome="permit",
        agreement=PLANNING,
    )


def engine_for(register: dict, agreements: dict, version: str) -> EmbeddedRegoEngine:
    return EmbeddedRegoEngine(default_policy_dir(), rego_data(register, agreements, version))


def approved_narrowing(data_dir: Path) -> str:
    published = ensure_initial_version(data_dir, "datatrust init")
    draft = create_draft(
        data_dir, DANA, AUTHORIZE, published.register, narrowed(published.agreements)
    )
    submit_draft(data_dir, draft.id, DANA, AUTHORIZE)
    approve_draft(data_dir, draft.id, BO, AUTHORIZE, "checked with the planning team")
    return draft.id


# --- the store ------------------------------------------------------------------------------


def test_the_shipped_documents_become_version_1_once(tmp_path: Path) -> None:
    assert (read_published(tmp_path), current_stamp(tmp_path)) == (None, None)
    first = ensure_initial_version(tmp_path, "datatrust init")
    again = ensure_initial_version(tmp_path, "datatrust up")
    assert (first.number, first.label, first.register, first.agreements) == (
        1,
        "v1",
        demo_register(),
        demo_agreements(),
    )
    assert first.policy_version == f"v1 ({VERSIONS})"
    assert (again, version_numbers(tmp_path), current_stamp(tmp_path)) == (
        first,
        [1],
        first.stamp,
    )


def _input(request: AuditedRequest) -> dict:
    return decision_input(request)


def test_decisions_carry_the_published_policy_version(tmp_path: Path) -> None:
    published = ensure_initial_version(tmp_path, "datatrust init")
    engine = engine_for(published.register, published.agreements, published.policy_version)
    decision = engine.decide(_input(planning_query(datetime(2026, 11, 2, tzinfo=UTC))))
    assert (decision.allow, decision.policy_version) == (
        True,
        f"v1 ({VERSIONS})",
    )


def test_a_version_whose_pointer_is_not_written_yet_is_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    draft_id = approved_narrowing(tmp_path)
    before = read_published(tmp_path)

    def crash(path: Path, content: bytes) -> None:
        raise OSError("power lost before current.json was replaced")

    monkeypatch.setattr(_store, "write_atomic", crash)
    with pytest.raises(OSError, match="power lost"):
        publish_draft(tmp_path, draft_id, DANA, AUTHORIZE)
    assert read_published(tmp_path) == before
    assert current_stamp(tmp_path) == before.stamp


def test_a_half_built_version_directory_is_ignored(tmp_path: Path) -> None:
    ensure_initial_version(tmp_path, "datatrust init")
    half = tmp_path / "policies" / "versions" / ".incoming-2-999"
    half.mkdir()
    (half / "agreements.json").write_text("{", encoding="utf-8")
    assert (version_numbers(tmp_path), read_published(tmp_path).number) == ([1], 1)


def test_a_published_file_changed_on_disk_is_refused(tmp_path: Path) -> None:
    ensure_initial_version(tmp_path, "datatrust init")
    path = tmp_path / "policies" / "versions" / "1" / "agreements.json"
    path.write_text(path.read_text().replace('"aggregate-only"', '"identifiable"'))
    with pytest.raises(PolicyStoreCorrupt, match=r"agreements.json does not match the hash"):
        read_published(tmp_path)


def test_readers_during_publishes_see_whole_versions_only(tmp_path: Path) -> None:
    published = ensure_initial_version(tmp_path, "datatrust init")
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            policy = read_published(tmp_path)
            seen.append((policy.number, policy.agreements["version"]))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(2, 7):
            agreements = copy.deepcopy(published.agreements) | {"version": f"v-{n}"}
            _store.publish_version(
                tmp_path, published.register, agreements, author="t", author_agency=None,
                approved_by=None, published_by="t", reason="test", kind="publish", base=n - 1,
            )  # fmt: skip
    finally:
        stop.set()
        reader.join()
    assert seen
    first = published.agreements["version"]
    assert all(version == (first if n == 1 else f"v-{n}") for n, version in seen)


# --- review ---------------------------------------------------------------------------------


def test_the_author_cannot_approve_their_own_draft(tmp_path: Path) -> None:
    published = ensure_initial_version(tmp_path, "datatrust init")
    draft = create_draft(
        tmp_path, DANA, AUTHORIZE, published.register, narrowed(published.agreements)
    )
    submit_draft(tmp_path, draft.id, DANA, AUTHORIZE)
    with pytest.raises(
        AccessDenied,
        match="a draft needs approval by a second DPO of the same agency, not its author",
    ):
        approve_draft(tmp_path, draft.id, DANA, AUTHORIZE, "looks fine to me")


def test_a_dpo_of_another_agency_cannot_approve(tmp_path: Path) -> None:
    published = ensure_initial_version(tmp_path, "datatrust init")
    draft = create_draft(
        tmp_path, DANA, AUTHORIZE, published.register, narrowed(published.agreements)
    )
    submit_draft(tmp_path, draft.id, DANA, AUTHORIZE)
    with pytest.raises(AccessDenied, match="dpo 'cy' of agency 'council' may not approve"):
        approve_draft(tmp_path, draft.id, CY, AUTHORIZE, "fine")
    assert read_draft(tmp_path, draft.id).status == "submitted"


def test_a_draft_is_published_only_after_approval_and_records_the_approver(tmp_path: Path) -> None:
    published = ensure_initial_version(tmp_path, "datatrust init")
    draft = create_draft(
        tmp_path, DANA, AUTHORIZE, published.register, narrowed(published.agreements)
    )
    with pytest.raises(
        PolicyStepRefused, match="draft health-1 is draft; publish needs an approved draft"
    ):
        publish_draft(tmp_path, draft.id, DANA, AUTHORIZE)
    submit_draft(tmp_path, draft.id, DANA, AUTHORIZE)
    approve_draft(tmp_path, draft.id, BO, AUTHORIZE, "checked")
    manifest = publish_draft(tmp_path, draft.id, DANA, AUTHORIZE, "stop encounter counts")
    recorded = (manifest.label, manifest.author, manifest.approved_by, manifest.parent)
    assert (*recorded, manifest.draft) == ("v2", "dana (health)", "bo (health)", 1, "health-1")
    assert read_published(tmp_path).agreements == narrowed(published.agreements)
    with pytest.raises(PolicyStepRefused, match="is published; publish needs"):
        publish_draft(tmp_path, draft.id, DANA, AUTHORIZE)


def test_a_draft_edited_after_approval_is_not_published(tmp_path: Path) -> None:
    draft_id = approved_narrowing(tmp_path)
    path = tmp_path / "policies" / "drafts" / draft_id / "agreements.json"
    widened = json.loads(path.read_text())
    agreement(widened, PLANNING)["disclosure"]["min_cell_size"] = 3
    path.write_text(json.dumps(widened))
    with pytest.raises(PolicyStepRefused, match="changed after it was approved"):
        publish_draft(tmp_path, draft_id, DANA, AUTHORIZE)


def test_a_rejected_draft_goes_back_to_its_author(tmp_path: Path) -> None:
    published = ensure_initial_version(tmp_path, "datatrust init")
    draft = create_draft(
        tmp_path, DANA, AUTHORIZE, published.register, narrowed(published.agreements)
    )
    submit_draft(tmp_path, draft.id, DANA, AUTHORIZE)
    with pytest.raises(PolicyStepRefused, match="reject needs a comment"):
        reject_draft(tmp_path, draft.id, BO, AUTHORIZE, "")
    rejected = reject_draft(tmp_path, draft.id, BO, AUTHORIZE, "talk to planning first")
    assert (rejected.status, rejected.comments[-1]["comment"]) == (
        "rejected",
        "talk to planning first",
    )
    assert submit_draft(tmp_path, draft.id, DANA, AUTHORIZE).status == "submitted"


def test_a_dpo_drafts_only_agreements_their_agency_is_party_to(tmp_path: Path) -> None:
    published = ensure_initial_version(tmp_path, "datatrust init")
    changed = copy.deepcopy(published.agreements)
    agreement(changed, RESEARCH)["disclosure"]["min_cell_size"] = 5  # not council's
    with pytest.raises(
        PolicyInvalid,
        match="agreement 'dsa-research-cohort' is between health, social-care, university; "
        "a DPO of agency 'council' may only draft",
    ):
        create_draft(tmp_path, CY, AUTHORIZE, published.register, changed)


def test_an_analyst_cannot_draft(tmp_path: Path) -> None:
    published = ensure_initial_version(tmp_path, "datatrust init")
    analyst = Requester(subject="ada", agency="council", roles=("analyst",))
    with pytest.raises(AccessDenied, match="not a data protection officer"):
        create_draft(tmp_path, analyst, AUTHORIZE, published.register, published.agreements)


# --- diff, dry run, rollback ----------------------------------------------------------------


def test_the_diff_says_what_changed_in_words() -> None:
    old = demo_agreements()
    new = narrowed(old)
    agreement(new, PLANNING)["disclosure"]["min_cell_size"] = 20
    agreement(new, PLANNING)["end"] = "2027-12-31"
    agreement(new, RESEARCH)["consent_required"] = False
    agreement(new, RESEARCH)["purposes"].append("official-statistics")
    agreement(new, "dsa-safeguarding-referrals")["status"] = "active"
    care = dataset(new, RESEARCH, "social-care")
    care["fields"] = [f for f in care["fields"] if f["field"] != "CareEpisode.start"]
    health = dataset(new, RESEARCH, "health")
    next(f for f in health["fields"] if f["field"] == "Person.birthYear")["output"] = "masked"
    register = demo_register()
    new_register = copy.deepcopy(register)
    new_register["purposes"].append(
        {"id": "audit", "title": "Clinical audit", "dpv": "dpv:ServiceOptimisation",
         "national_data_opt_out_applies": False}
    )  # fmt: skip
    assert diff_documents(register, old, new_register, new) == [
        "purpose audit added to the register ('Clinical audit')",
        "agreement dsa-planning-area-statistics: end date 2028-12-31 -> 2027-12-31",
        "agreement dsa-planning-area-statistics: min cell size 10 -> 20",
        "agreement dsa-planning-area-statistics: Area.encounterCount at health: "
        "aggregate-only -> removed",
        "agreement dsa-research-cohort: consent required yes -> no",
        "agreement dsa-research-cohort: purpose official-statistics added",
        "agreement dsa-research-cohort: Person.birthYear at health: identifiable -> masked",
        "agreement dsa-research-cohort: CareEpisode.start at social-care: identifiable -> removed",
        "agreement dsa-safeguarding-referrals: status draft -> active",
    ]


def test_the_dry_run_lists_the_queries_a_narrowed_agreement_refuses(tmp_path: Path) -> None:
    register, agreements = demo_register(), demo_agreements()
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    recent = [
        planning_query(now - timedelta(days=2)),
        AuditedRequest(
            recorded_at=now - timedelta(days=1), node="council", agency="council",
            roles=("analyst",), client_id="analyst-cli", purpose="service-planning",
            fields=("Area.code", "Area.footfall"), aggregate=True, outcome="permit",
            agreement=PLANNING,
        ),
        planning_query(now + timedelta(days=1)),  # not yet made: never replayed
    ]  # fmt: skip
    changes = dry_run(
        recent,
        engine_for(register, agreements, "v1"),
        engine_for(register, narrowed(agreements), "draft health-1"),
        now,
    )
    assert [(c.request, c.current.allow, c.now_allowed) for c in changes] == [
        (recent[0], True, False)
    ]
    assert changes[0].summary == (
        "would now be REFUSED: agreement dsa-planning-area-statistics does not share field "
        "Area.encounterCount at node 'health'"
    )


def test_publish_refuses_the_narrowed_query_and_rollback_restores_it(tmp_path: Path) -> None:
    draft_id = approved_narrowing(tmp_path)
    query = _input(planning_query(datetime(2026, 11, 20, tzinfo=UTC)))

    def decide():
        policy = read_published(tmp_path)
        engine = engine_for(policy.register, policy.agreements, policy.policy_version)
        return engine.decide(query)

    assert decide().allow is True
    publish_draft(tmp_path, draft_id, DANA, AUTHORIZE)
    refused = decide()
    assert (refused.allow, refused.reasons, refused.policy_version) == (
        False,
        ("agreement dsa-planning-area-statistics does not share field Area.encounterCount "
         "at node 'health'",),
        f"v2 ({VERSIONS})",
    )  # fmt: skip
    manifest = rollback(tmp_path, 1, BO, AUTHORIZE, "planning needs the counts until March")
    restored = decide()
    assert (manifest.label, manifest.kind, manifest.rollback_of, manifest.parent) == (
        "v3", "rollback", 1, 2,
    )  # fmt: skip
    assert (restored.allow, restored.agreement, restored.policy_version) == (
        True,
        PLANNING,
        f"v3 ({VERSIONS})",
    )


def test_rollback_needs_a_dpo_of_an_affected_agency(tmp_path: Path) -> None:
    publish_draft(tmp_path, approved_narrowing(tmp_path), DANA, AUTHORIZE)
    university = Requester(subject="uma", agency="university", roles=("dpo",))
    with pytest.raises(AccessDenied, match="only a DPO of one of them may do it"):
        rollback(tmp_path, 1, university, AUTHORIZE, "why not")
    with pytest.raises(PolicyStepRefused, match="are the ones in force"):
        rollback(tmp_path, 2, BO, AUTHORIZE, "no change")


def test_a_draft_made_before_another_publish_is_refused(tmp_path: Path) -> None:
    first = approved_narrowing(tmp_path)
    published = read_published(tmp_path)
    second = create_draft(tmp_path, BO, AUTHORIZE, published.register, published.agreements)
    publish_draft(tmp_path, first, DANA, AUTHORIZE)
    submit_draft(tmp_path, second.id, BO, AUTHORIZE)
    approve_draft(tmp_path, second.id, DANA, AUTHORIZE, "ok")
    with pytest.raises(PolicyStepRefused, match="based on version v1 but version v2 is in force"):
        publish_draft(tmp_path, second.id, BO, AUTHORIZE)


# --- validation -----------------------------------------------------------------------------


def test_valid_shipped_documents_have_no_problems() -> None:
    assert validate_policy(demo_register(), demo_agreements()) == []


def test_an_unknown_purpose_is_named_with_its_agreement_path(tmp_path: Path) -> None:
    agreements = demo_agreements()
    agreement(agreements, PLANNING)["purposes"].append("marketing")
    problems = [str(p) for p in validate_policy(demo_register(), agreements)]
    at = f"$.agreements[{index(agreements, PLANNING)}].purposes[2]"
    assert problems == [f"agreements {at}: unknown purpose 'marketing'"]
    ensure_initial_version(tmp_path, "init")
    with pytest.raises(PolicyInvalid, match=r"unknown purpose 'marketing'"):
        create_and_submit(tmp_path, agreements)


def create_and_submit(data_dir: Path, agreements: dict) -> None:
    draft = create_draft(data_dir, DANA, AUTHORIZE, demo_register(), agreements)
    submit_draft(data_dir, draft.id, DANA, AUTHORIZE)


def test_a_schema_error_is_refused_at_publish(tmp_path: Path) -> None:
    agreements = demo_agreements()
    agreements["agreements"][0]["disclosure"]["min_cell_size"] = -1
    with pytest.raises(
        PolicyInvalid,
        match=r"\$\.agreements\[0\]\.disclosure\.min_cell_size: -1 is less than the minimum of 0",
    ):
        _store.publish_version(
            tmp_path, demo_register(), agreements, author="t", author_agency=None,
            approved_by=None, published_by="t", reason="t", kind="publish", base=None,
        )  # fmt: skip
    assert (read_published(tmp_path), version_numbers(tmp_path)) == (None, [])


def test_overlapping_agreements_with_different_rules_are_refused() -> None:
    agreements = demo_agreements()
    twin = copy.deepcopy(agreement(agreements, PLANNING))
    twin["id"] = "dsa-planning-small-cells"
    twin["purposes"] = ["service-planning"]
    twin["disclosure"]["min_cell_size"] = 3
    agreements["agreements"].append(twin)
    problems = [str(p) for p in validate_policy(demo_register(), agreements)]
    assert problems == [
        f"agreements $.agreements[{len(agreements['agreements']) - 1}]: agreement "
        "'dsa-planning-small-cells' overlaps active agreement 'dsa-planning-area-statistics' "
        f"($.agreements[{index(agreements, PLANNING)}]) for analyst of agency "
        "'council', purpose 'service-planning', field AirQuality.no2Mean at node 'council', "
        "but sets minimum cell size 3 where 'dsa-planning-area-statistics' sets 10 "
        "(min_cell_size); make their periods, purposes or fields disjoint, or agree one rule"
    ]


def test_a_rego_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    source = (default_policy_dir() / "decision.rego").read_text(encoding="utf-8")
    broken = source.replace(
        "valid_purpose if is_string(input.purpose)", "valid_purpose if is_string(input.purpose"
    )
    problems = validate_policy(
        demo_register(), demo_agreements(), modules={"decision.rego": broken}
    )
    line = broken[: broken.index("is_string(input.purpose")].count("\n") + 1
    assert f"rego decision.rego line {line}, column 27: does not compile: this is unclosed" in [
        str(p) for p in problems
    ]
