"""Bad documents never get published, and a node never runs a half-published version.

Acceptance 8 of issue 6. The first half drives ``datatrust policy`` on a data directory:
each kind of bad document is refused by ``validate`` and again at ``publish`` (even for a
draft whose approval was forged on disk), and a Rego directory that does not compile is
named by file and line. The second half runs a real health node while the store is
damaged the ways a crash or a careless hand can damage it, and shows the node keeps
deciding with the version it had, says so at ``/readyz``, and that ``read_published``
refuses the damaged version.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from datatrust.cli import app
from datatrust.errors import DatatrustError
from datatrust.node import create_node_app
from datatrust.policies import AccessRequest, PolicyRuntime, PolicySnapshot, Requester
from datatrust.policies.lifecycle import (
    PolicyStoreCorrupt,
    current_stamp,
    default_policy_dir,
    ensure_initial_version,
    read_published,
    read_version,
    version_numbers,
)
from datatrust.policies.lifecycle._drafts import documents_hash
from datatrust.policies.lifecycle._store import publish_version
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import AuditEvent, create_store_engine
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

PLANNING = "dsa-planning-area-statistics"
RESEARCH = "dsa-research-cohort"
HANA = ("--as-user", "hana", "--agency", "health", "--role", "dpo")
HUGO = "hugo (health)"
POLL_SECONDS = 1.0  # the node's published_runtime check interval
AREA_COUNTS = (
    'query AreaCounts { _entities(representations: [{__typename: "Area", code: "E01009564"}]) '
    "{ ... on Area { code encounterCount } } }"
)


def policy(data_dir: Path, *args: str) -> tuple[int, str]:
    """Run ``datatrust policy ...``; (exit status, output or the refusal's message)."""
    result = CliRunner().invoke(app, ["policy", *args, "--data-dir", str(data_dir)])
    if isinstance(result.exception, DatatrustError):
        return 2, " ".join(result.exception.message.split())
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, " ".join(result.stdout.split())


def agreement(agreements: dict, ident: str) -> dict:
    return next(a for a in agreements["agreements"] if a["id"] == ident)


def at(agreements: dict, ident: str) -> int:
    return [a["id"] for a in agreements["agreements"]].index(ident)


# --- bad documents, refused at validate and at publish ---------------------------------------


def negative_cell_size(agreements: dict) -> str:
    agreement(agreements, PLANNING)["disclosure"]["min_cell_size"] = -1
    return (
        f"agreements $.agreements[{at(agreements, PLANNING)}].disclosure.min_cell_size: "
        "-1 is less than the minimum of 0"
    )


def unknown_purpose(agreements: dict) -> str:
    agreement(agreements, RESEARCH)["purposes"].append("marketing")
    where = f"$.agreements[{at(agreements, RESEARCH)}].purposes[1]"
    return f"agreements {where}: unknown purpose 'marketing'"


def contradictory_twin(agreements: dict) -> str:
    twin = copy.deepcopy(agreement(agreements, RESEARCH))
    twin.update(id="dsa-research-twin", start="2028-01-01", end="2030-12-31")
    area = next(f for f in twin["datasets"][0]["fields"] if f["field"] == "Person.areaCode")
    area["output"] = "identifiable"  # masked in the research agreement
    agreements["agreements"].append(twin)
    return (
        f"agreements $.agreements[{len(agreements['agreements']) - 1}]: contradicts active "
        f"agreement '{RESEARCH}' (agreement $.agreements[{at(agreements, RESEARCH)}]) for "
        "purpose 'research': dataset 'health-encounters' field Person.areaCode is masked in "
        "one and identifiable in the other"
    )


def overlapping_twin(agreements: dict) -> str:
    twin = copy.deepcopy(agreement(agreements, PLANNING))
    twin.update(id="dsa-planning-small-cells", purposes=["service-planning"])
    twin["disclosure"]["min_cell_size"] = 3
    agreements["agreements"].append(twin)
    return (
        f"agreements $.agreements[{len(agreements['agreements']) - 1}]: agreement "
        f"'dsa-planning-small-cells' overlaps active agreement '{PLANNING}' "
        f"($.agreements[{at(agreements, PLANNING)}]) for analyst of agency 'council', purpose "
        "'service-planning', field AirQuality.no2Mean at node 'council', but sets minimum "
        f"cell size 3 where '{PLANNING}' sets 10 (min_cell_size); make their periods, "
        "purposes or fields disjoint, or agree one rule"
    )


@pytest.mark.parametrize(
    "spoil",
    [negative_cell_size, unknown_purpose, contradictory_twin, overlapping_twin],
    ids=["schema error", "unknown purpose", "contradictory agreements", "overlapping agreements"],
)
def test_a_bad_draft_is_refused_at_validate_submit_and_publish(
    tmp_path: Path, spoil: Callable[[dict], str]
) -> None:
    ensure_initial_version(tmp_path, "datatrust init")
    status, output = policy(tmp_path, "draft", "new", *HANA)
    assert status == 0, output
    folder = tmp_path / "policies" / "drafts" / "health-1"
    agreements = json.loads((folder / "agreements.json").read_text(encoding="utf-8"))
    problem = spoil(agreements)
    (folder / "agreements.json").write_text(json.dumps(agreements, indent=2), encoding="utf-8")
    refusal = f"draft health-1 cannot be published: 1 problem(s) - {problem}"

    assert policy(tmp_path, "validate", "health-1") == (1, refusal)
    assert policy(tmp_path, "submit", "health-1", *HANA) == (2, refusal)

    # Even with its approval forged in draft.json, publishing validates again and refuses.
    record = json.loads((folder / "draft.json").read_text(encoding="utf-8"))
    content = documents_hash(folder)
    record.update(
        status="approved", submitted_sha256=content, approved_sha256=content, approved_by=HUGO
    )
    (folder / "draft.json").write_text(json.dumps(record), encoding="utf-8")
    assert policy(tmp_path, "publish", "health-1", *HANA) == (2, refusal)
    assert (version_numbers(tmp_path), read_published(tmp_path).label) == ([1], "v1")


def broken_rego_dir(tmp_path: Path) -> tuple[Path, int]:
    """A copy of the shipped Rego with an unclosed parenthesis, and the line it is on."""
    directory = tmp_path / "datause"
    shutil.copytree(default_policy_dir(), directory)
    path = directory / "decision.rego"
    source = path.read_text(encoding="utf-8")
    broken = source.replace(
        "valid_purpose if is_string(input.purpose)", "valid_purpose if is_string(input.purpose"
    )
    assert broken != source
    path.write_text(broken, encoding="utf-8")
    return directory, broken[: broken.index("is_string(input.purpose")].count("\n") + 1


def test_a_rego_directory_with_a_syntax_error_is_refused_naming_file_and_line(
    tmp_path: Path,
) -> None:
    ensure_initial_version(tmp_path, "datatrust init")
    directory, line = broken_rego_dir(tmp_path)
    status, output = policy(tmp_path, "validate", "--policy-dir", str(directory))
    assert status == 1
    assert output.startswith("v1 (current) cannot be published: ")
    assert f"rego decision.rego line {line}, column 27: does not compile: this is unclosed" in (
        output
    )
    assert policy(tmp_path, "validate") == (0, "v1 (current): valid")


def test_a_node_runtime_keeps_the_last_good_version_when_the_rego_does_not_compile(
    tmp_path: Path,
) -> None:
    """The runtime a node builds over the published store (``published_runtime``), here
    with its own copy of the Rego so the test can break it between two versions."""
    ensure_initial_version(tmp_path, "datatrust init")
    directory = tmp_path / "datause"
    shutil.copytree(default_policy_dir(), directory)

    def source() -> PolicySnapshot:
        published = read_published(tmp_path)
        return PolicySnapshot(
            published.stamp, published.policy_version, published.register, published.agreements
        )

    runtime = PolicyRuntime(
        source, lambda: current_stamp(tmp_path), policy_dir=directory, check_interval=0
    )
    planner = Requester(subject="ada", agency="council", roles=("analyst",), client_id="cli")
    request = AccessRequest(
        purpose="service-planning",
        node="health",
        fields=frozenset({("Area", "code"), ("Area", "encounterCount")}),
        requester=planner,
    )
    assert runtime.decide(request).policy_version.startswith("v1 ")

    broken, _ = broken_rego_dir(tmp_path / "elsewhere")
    shutil.copy(broken / "decision.rego", directory / "decision.rego")
    v1 = read_published(tmp_path)
    publish_version(
        tmp_path, v1.register, v1.agreements | {"version": "2026-12-01"}, author="t",
        author_agency="health", approved_by=HUGO, published_by="t", reason="t",
        kind="publish", base=1,
    )  # fmt: skip
    permit = runtime.decide(request)
    assert permit.policy_version == v1.policy_version
    assert runtime.policy_version == v1.policy_version
    assert runtime.load_error == (
        "DatatrustError: policy v2 (agreements 2026-12-01, purposes 2026-11-01) did not compile"
    )


# --- a running node and a damaged store ------------------------------------------------------


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    with trust_identity(tmp_path_factory.mktemp("identity")) as running:
        yield running


class Node:
    """A running health node (an empty store: decisions do not need data) on ``data_dir``."""

    def __init__(self, data_dir: Path, identity) -> None:
        self.data_dir = data_dir
        self.identity = identity
        self.settings = load_settings(
            NodeSettings,
            environ={},
            node_id="health",
            agency="health",
            data_dir=data_dir,
            issuers=identity.issuers,
        )

    def __enter__(self) -> Node:
        self._context = app_client(create_node_app(self.settings))
        self.client = self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)

    def readyz(self) -> tuple[int, dict]:
        response = self.client.get("/readyz")
        return response.status_code, response.json()

    def area_counts(self) -> tuple[int, dict]:
        response = self.client.post(
            "/graphql",
            json={"query": AREA_COUNTS},
            headers=self.identity.headers_for("analyst-cli", "service-planning"),
        )
        return response.status_code, response.json()

    def last_policy_version(self) -> str:
        engine = create_store_engine(self.settings.effective_database_url)
        try:
            with engine.connect() as connection:
                return connection.execute(
                    sa.select(AuditEvent.policy_version).order_by(AuditEvent.seq.desc()).limit(1)
                ).scalar_one()
        finally:
            engine.dispose()


def publish_narrowing(data_dir: Path) -> None:
    """v2: health stops sharing encounter counts for planning (so v1 and v2 differ on the
    analyst's query: allowed under v1, refused under v2)."""
    v1 = read_published(data_dir)
    agreements = copy.deepcopy(v1.agreements)
    at_health = next(
        d for d in agreement(agreements, PLANNING)["datasets"] if d["node"] == "health"
    )
    at_health["fields"] = [f for f in at_health["fields"] if f["field"] != "Area.encounterCount"]
    publish_version(
        data_dir, v1.register, agreements, author="hana (health)", author_agency="health",
        approved_by=HUGO, published_by="hana (health)", reason="narrow", kind="publish", base=1,
    )  # fmt: skip


def pointer(data_dir: Path) -> Path:
    return data_dir / "policies" / "current.json"


def version_file(data_dir: Path, name: str) -> Path:
    return data_dir / "policies" / "versions" / "2" / name


def truncate(path: Path) -> None:
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


# Each: how a crash (or a hand) leaves the store after v2 was being published, and what
# the node and read_published then say (None: nothing is wrong, v2 simply is not in force).
DAMAGE: dict[str, tuple[Callable[[Path, bytes], None], str | None]] = {
    "version written, pointer not swapped": (
        lambda d, v1_pointer: pointer(d).write_bytes(v1_pointer),
        None,
    ),
    "pointer truncated": (
        lambda d, _: truncate(pointer(d)),
        "current.json is not a policy pointer",
    ),
    "a document does not match the manifest": (
        lambda d, _: truncate(version_file(d, "agreements.json")),
        "agreements.json does not match the hash in its manifest",
    ),
    "manifest rewritten": (
        lambda d, _: version_file(d, "manifest.json").write_text(
            version_file(d, "manifest.json").read_text().replace('"narrow"', '"other"')
        ),
        "manifest.json does not match the hash in",
    ),
    "pointer swapped before the version directory was in place": (
        lambda d, _: version_file(d, "").rename(d / "policies" / "versions" / ".incoming-2-1"),
        "there is no policy version 2 (published: v1)",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE), ids=list(DAMAGE))
def test_a_node_keeps_its_version_while_the_store_is_damaged_and_says_so(
    tmp_path: Path, identity, damage: str
) -> None:
    spoil, problem = DAMAGE[damage]
    v1 = ensure_initial_version(tmp_path, "datatrust init")
    v1_pointer = pointer(tmp_path).read_bytes()
    with Node(tmp_path, identity) as node:
        assert node.area_counts()[0] == 200
        publish_narrowing(tmp_path)  # the node has not polled since: it never saw v2 whole
        spoil(tmp_path, v1_pointer)
        time.sleep(POLL_SECONDS + 0.1)

        status, ready = node.readyz()
        assert (status, ready["status"], ready["policy_version"]) == (
            200,
            "ready",
            v1.policy_version,
        )
        if problem is None:
            assert ready["policy_problem"] is None
            assert read_published(tmp_path) == v1
        else:
            assert ready["policy_problem"].startswith("PolicyStoreCorrupt: ")
            assert problem in ready["policy_problem"]
            with pytest.raises(PolicyStoreCorrupt, match=problem.split(" (")[0]):
                read_published(tmp_path)
        # Still decided by v1 (v2 would refuse encounter counts), and audited as v1.
        status, body = node.area_counts()
        assert status == 200, body
        assert node.last_policy_version() == v1.policy_version

        # Once the pointer names v1 whole again, the node reports no problem.
        pointer(tmp_path).write_bytes(v1_pointer)
        time.sleep(POLL_SECONDS + 0.1)
        status, ready = node.readyz()
        assert (ready["policy_version"], ready["policy_problem"]) == (v1.policy_version, None)


def test_a_node_started_on_a_damaged_store_refuses_every_request(tmp_path: Path, identity) -> None:
    ensure_initial_version(tmp_path, "datatrust init")
    truncate(pointer(tmp_path))
    with Node(tmp_path, identity) as node:
        status, ready = node.readyz()
        assert status == 503
        assert ready["reason"].startswith("no data-use policy in force (PolicyStoreCorrupt: ")
        assert "current.json is not a policy pointer" in ready["reason"]
        status, body = node.area_counts()
        assert status == 403
        assert body["data"] is None
        assert "this node has no data-use policy in force" in body["errors"][0]["message"]


def test_a_dpo_repairs_a_damaged_store_by_rolling_back_and_the_node_follows(
    tmp_path: Path, identity
) -> None:
    v1 = ensure_initial_version(tmp_path, "datatrust init")
    with Node(tmp_path, identity) as node:
        assert node.area_counts()[0] == 200
        publish_narrowing(tmp_path)
        truncate(version_file(tmp_path, "agreements.json"))  # v2 is in force, but damaged
        status, history = policy(tmp_path, "history")
        assert status == 0
        assert "the version in force is damaged: policy version 2: " in history
        assert "v2 damaged: policy version 2: " in history
        assert "datatrust policy rollback N" in history
        assert policy(tmp_path, "draft", "new", *HANA)[0] == 2  # nothing to draft from

        status, output = policy(tmp_path, "rollback", "v1", "--reason", "v2 is damaged", *HANA)
        assert (status, output) == (0, "published v3 with the documents of v1 (rollback)")
        v3 = read_published(tmp_path)
        assert (v3.register, v3.agreements) == (v1.register, v1.agreements)
        manifest = read_version(tmp_path, 3)[0]
        assert (manifest.kind, manifest.rollback_of, manifest.parent) == ("rollback", 1, None)
        assert manifest.reason.startswith("v2 is damaged (repairs: policy version 2: ")

        time.sleep(POLL_SECONDS + 0.1)
        status, ready = node.readyz()
        assert (ready["policy_version"], ready["policy_problem"]) == (v3.policy_version, None)
        assert node.area_counts()[0] == 200
        assert node.last_policy_version() == v3.policy_version
