"""A DPO narrows an agreement on a running trust, a second DPO approves it, and it is undone.

Acceptance 7 of issue 6, end to end: a real health node (its store loaded through ingest)
on a data directory with version 1 published, a live identity server, and the DPOs acting
with their own access tokens (authorization code with PKCE, as a person signs in), verified
by the ``datatrust policy`` command line exactly as a node verifies them. Nothing is
restarted: the node picks each version up from the published store while it runs.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from datatrust import _prepare
from datatrust.cli import app
from datatrust.demo import coventry_lsoas
from datatrust.errors import DatatrustError
from datatrust.node import create_node_app
from datatrust.policies.lifecycle import (
    ensure_initial_version,
    read_draft,
    read_published,
    read_version,
)
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import AuditEvent, create_store_engine
from tests.asgi_client import app_client
from tests.trust.identity.live import REDIRECT_URI, pkce_pair, sign_in
from tests.trust_identity import trust_identity

PLANNING = "dsa-planning-area-statistics"
POLL_SECONDS = 1.0  # the node's published_runtime check interval
AREA_COUNTS = (
    "query AreaCounts($r: [_Any!]!) { _entities(representations: $r) "
    "{ ... on Area { code encounterCount } } }"
)
AREAS = {"r": [{"__typename": "Area", "code": lsoa.code} for lsoa in coventry_lsoas()[:5]]}
NARROWED = f"agreement {PLANNING} does not share field Area.encounterCount at node 'health'"


def node_config(data_dir: Path, node_id: str, identity) -> Path:
    """The settings file ``up`` would write, trusting the live issuer (read by the CLI too)."""
    (issuer,) = identity.issuers
    config = data_dir / "config" / f"{node_id}.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'node_id = "{node_id}"\nagency = "{node_id}"\n'
        f"data_dir = {json.dumps(data_dir.as_posix())}\n\n"
        f"[[issuers]]\nissuer = {json.dumps(issuer.issuer)}\n"
        f"jwks_url = {json.dumps(issuer.jwks_url)}\nagencies = {json.dumps(issuer.agencies)}\n",
        encoding="utf-8",
    )
    return config


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    with trust_identity(tmp_path_factory.mktemp("identity")) as running:
        yield running


@pytest.fixture(scope="module")
def health(tmp_path_factory, identity):
    """The health node, running on a data directory where v1 (the shipped documents) is
    published, with its settings file where the CLI finds them."""
    data_dir = tmp_path_factory.mktemp("trust").resolve()
    ensure_initial_version(data_dir, "datatrust init")
    settings = load_settings(
        NodeSettings, toml_path=node_config(data_dir, "health", identity), environ={}
    )
    sources = _prepare.write_demo_files(data_dir)
    _prepare.prepare_demo_node(
        data_dir, "health", settings.effective_database_url, sources["health"]
    )
    with app_client(create_node_app(settings)) as client:
        client.settings = settings
        client.data_dir = data_dir
        yield client


def person_token(identity, username: str) -> str:
    """A person's access token: signed in through the portal with PKCE, as in a browser."""
    verifier, challenge = pkce_pair()
    redirect = sign_in(identity.live, challenge=challenge, username=username, scope="openid")
    code = parse_qs(urlsplit(redirect.headers["location"]).query)["code"][0]
    response = httpx.post(
        f"{identity.live.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": "portal",
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def policy(data_dir: Path, *args: str) -> tuple[int, str]:
    """Run ``datatrust policy ...``; (exit status, output or the refusal's message)."""
    result = CliRunner().invoke(app, ["policy", *args, "--data-dir", str(data_dir)])
    if isinstance(result.exception, DatatrustError):
        return 2, result.exception.message
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, " ".join(result.stdout.split())


def area_counts(node) -> tuple[int, dict]:
    response = node.post(
        "/graphql",
        json={"query": AREA_COUNTS, "variables": AREAS},
        headers=node.identity.headers_for("analyst-cli", "service-planning"),
    )
    return response.status_code, response.json()


def last_audit_entry(node) -> AuditEvent:
    engine = create_store_engine(node.settings.effective_database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)
            ).one()
    finally:
        engine.dispose()


def readyz_version(node) -> str:
    response = node.get("/readyz")
    assert response.status_code == 200, response.text
    return response.json()["policy_version"]


def published_within_poll(node, label: str, published_at: float) -> str:
    """/readyz's policy version once it names ``label``; fails if that takes longer than
    one poll interval (and a little for the request itself)."""
    while True:
        version = readyz_version(node)
        if version.startswith(f"{label} "):
            return version
        assert time.monotonic() - published_at < POLL_SECONDS + 0.5, (
            f"the node still runs {version} {POLL_SECONDS + 0.5}s after {label} was published"
        )
        time.sleep(0.05)


def narrow(data_dir: Path, draft: str) -> None:
    """The DPO's hand edit: health stops sharing encounter counts for planning."""
    path = data_dir / "policies" / "drafts" / draft / "agreements.json"
    agreements = json.loads(path.read_text(encoding="utf-8"))
    planning = next(a for a in agreements["agreements"] if a["id"] == PLANNING)
    at_health = next(d for d in planning["datasets"] if d["node"] == "health")
    at_health["fields"] = [f for f in at_health["fields"] if f["field"] != "Area.encounterCount"]
    path.write_text(json.dumps(agreements, indent=2), encoding="utf-8")


def test_a_dpo_narrows_planning_at_health_and_rolls_it_back(health, identity):
    health.identity = identity
    data_dir = health.data_dir
    hana, hugo, dara = (
        ("--token", person_token(identity, who)) for who in ("health-dpo", "health-dpo2", "dpo")
    )
    assert readyz_version(health).startswith("v1 ")

    # An analyst's planning queries, allowed under v1 and audited.
    for _ in range(2):
        status, body = area_counts(health)
        assert status == 200, body
        assert any(area["encounterCount"] for area in body["data"]["_entities"])
    entry = last_audit_entry(health)
    assert (entry.outcome, entry.agreement, entry.operation) == ("permit", PLANNING, "AreaCounts")
    assert entry.policy_version.startswith("v1 ")

    # Hana drafts the narrowing from the version in force and checks it.
    status, output = policy(data_dir, "draft", "new", "--from", "current", *hana)
    assert (status, output.split()[:3]) == (0, ["draft", "health-1", "created"])
    draft = "health-1"
    narrow(data_dir, draft)
    assert policy(data_dir, "validate", draft) == (0, f"draft {draft}: valid")
    assert policy(data_dir, "diff", draft) == (
        0,
        f"v1 (current) -> draft {draft}: 1 change(s) - agreement {PLANNING}: "
        "Area.encounterCount at health: aggregate-only -> removed",
    )

    # The dry run replays the node's real ledger: both audited queries would now be refused.
    status, output = policy(data_dir, "dry-run", draft, "--days", "1", "--node", "health")
    assert status == 0, output
    counted = re.match(
        rf"draft {draft} against v1: (\d+) audited request\(s\) of the last 1 day\(s\) "
        r"replayed, (\d+) would be decided differently",
        output,
    )
    assert counted, output
    refusals = re.findall(
        r"council \(analyst\) via analyst-cli at health for service-planning: aggregate "
        rf"Area.code, Area.encounterCount would now be REFUSED: {re.escape(NARROWED)}",
        output,
    )
    assert len(refusals) == int(counted.group(2)) == 2, output

    # Review: not by its author, not by another agency's DPO, but by a second health DPO.
    assert policy(data_dir, "submit", draft, *hana)[0] == 0
    author = read_draft(data_dir, draft).author  # Hana, as her verified token names her
    four_eyes = "a draft needs approval by a second DPO of the same agency, not its author"
    assert policy(data_dir, "approve", draft, "--comment", "fine by me", *hana) == (
        2,
        f"access denied: dpo '{author}' of agency 'health' via client 'portal' may not "
        f"approve the draft by '{author}' of agency 'health'; {four_eyes}",
    )
    status, message = policy(data_dir, "approve", draft, "--comment", "looks right", *dara)
    assert status == 2
    assert re.fullmatch(
        rf"access denied: dpo '\w+' of agency 'council' via client 'portal' may not approve "
        rf"the draft by '{author}' of agency 'health'; {four_eyes}",
        message,
    ), message
    assert read_draft(data_dir, draft).status == "submitted"
    status, output = policy(data_dir, "publish", draft, *hana)
    assert (status, output) == (
        2,
        f"draft {draft} is submitted; publish needs an approved draft (submit it, then have "
        "a second DPO approve it)",
    )
    assert policy(data_dir, "approve", draft, "--comment", "counts move to the SDE", *hugo)[0] == 0

    # Published: within one poll the node runs v2 and refuses the same query, naming why.
    status, output = policy(data_dir, "publish", draft, "--reason", "counts move", *hana)
    published_at = time.monotonic()
    assert (status, output.split(",")[0]) == (0, "published v2"), output
    manifest = read_version(data_dir, 2)[0]
    approver = read_draft(data_dir, draft).approved_by
    assert (manifest.author, manifest.approved_by) == (f"{author} (health)", approver)
    assert approver.endswith(" (health)")
    assert not approver.startswith(author)
    v2 = published_within_poll(health, "v2", published_at)
    status, body = area_counts(health)
    assert status == 403, body
    assert body["data"] is None
    assert NARROWED in body["errors"][0]["message"]
    refused = last_audit_entry(health)
    assert (refused.outcome, refused.policy_version) == ("deny", v2)
    assert NARROWED in refused.reason

    # Hugo rolls back to v1: v3, documents equal to v1's, and the query is allowed again.
    status, output = policy(data_dir, "rollback", "v1", "--reason", "until March", *hugo)
    rolled_back_at = time.monotonic()
    assert (status, output) == (0, "published v3 with the documents of v1 (rollback)")
    v3 = published_within_poll(health, "v3", rolled_back_at)
    assert v3.removeprefix("v3 ") == read_published(data_dir).policy_version.removeprefix("v3 ")
    assert read_version(data_dir, 3)[1:] == read_version(data_dir, 1)[1:]
    assert v3.removeprefix("v3") == read_version(data_dir, 1)[0].policy_version.removeprefix("v1")
    status, body = area_counts(health)
    assert status == 200, body
    assert any(area["encounterCount"] for area in body["data"]["_entities"])
    allowed = last_audit_entry(health)
    assert (allowed.outcome, allowed.agreement, allowed.policy_version) == (
        "permit",
        PLANNING,
        v3,
    )
