"""``datatrust policy`` end to end on a data directory: draft, check, review, publish, undo."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datatrust._audit_cli import part_settings
from datatrust.cli import app
from datatrust.errors import DatatrustError
from datatrust.policies.lifecycle import (
    default_policy_dir,
    ensure_initial_version,
    read_published,
    read_version,
)
from datatrust.store import create_store_engine, migrate
from datatrust.trust import AuditEntry, append_audit_entry

PLANNING = "dsa-planning-area-statistics"
DANA = ("--as-user", "dana", "--agency", "health", "--role", "dpo")
BO = ("--as-user", "bo", "--agency", "health", "--role", "dpo")


def policy(data_dir: Path | None, *args: str) -> tuple[int, str]:
    """Run ``datatrust policy ...``; (exit status, output or the error's message)."""
    where = [] if data_dir is None else ["--data-dir", str(data_dir)]
    result = CliRunner().invoke(app, ["policy", *args, *where])
    if isinstance(result.exception, DatatrustError):
        return 2, result.exception.message
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, " ".join(result.stdout.split())


def audit_planning_query(data_dir: Path) -> None:
    """A council analyst's aggregate encounter counts at health, as health's ledger has it."""
    url = part_settings(data_dir, "health").effective_database_url
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_store_engine(url)
    try:
        migrate(engine)
        append_audit_entry(
            engine,
            AuditEntry(
                node_id="health", requester="council/ada via analyst-cli",
                purpose="service-planning", operation="AreaStats",
                fields=("Area.code", "Area.encounterCount"), outcome="permit", code="OK",
                reason="permitted", policy_version="v1", agency="council", roles=("analyst",),
                client_id="analyst-cli", subject="ada", aggregate=True, agreement=PLANNING,
            ),
        )  # fmt: skip
    finally:
        engine.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    ensure_initial_version(tmp_path, "datatrust init")
    return tmp_path


def narrow_draft(data_dir: Path) -> str:
    status, output = policy(data_dir, "draft", "new", "--from", "current", *DANA)
    assert (status, output.split()[:3]) == (0, ["draft", "health-1", "created"])
    path = data_dir / "policies" / "drafts" / "health-1" / "agreements.json"
    agreements = json.loads(path.read_text())
    planning = next(a for a in agreements["agreements"] if a["id"] == PLANNING)
    health = next(d for d in planning["datasets"] if d["node"] == "health")
    health["fields"] = [f for f in health["fields"] if f["field"] != "Area.encounterCount"]
    path.write_text(json.dumps(agreements, indent=2))
    return "health-1"


def test_a_narrowing_is_validated_diffed_dry_run_reviewed_published_and_rolled_back(
    data_dir: Path,
) -> None:
    audit_planning_query(data_dir)
    draft = narrow_draft(data_dir)
    assert policy(data_dir, "validate", draft) == (0, "draft health-1: valid")
    assert policy(data_dir, "diff", draft) == (
        0,
        "v1 (current) -> draft health-1: 1 change(s) - agreement dsa-planning-area-statistics: "
        "Area.encounterCount at health: aggregate-only -> removed",
    )
    status, output = policy(data_dir, "dry-run", draft, "--days", "7")
    assert status == 0
    assert re.fullmatch(
        "draft health-1 against v1: 1 audited request[(]s[)] of the last 7 day[(]s[)] replayed, "
        "1 would be decided differently "
        r"- \d{4}-\d\d-\d\d \d\d:\d\d council [(]analyst[)] via analyst-cli at health for "
        "service-planning: aggregate Area.code, Area.encounterCount "
        "would now be REFUSED: agreement dsa-planning-area-statistics does not share field "
        "Area.encounterCount at node 'health'",
        output,
    )
    assert policy(data_dir, "submit", draft, *DANA)[0] == 0
    assert policy(data_dir, "approve", draft, "--comment", "mine", *DANA) == (
        2,
        "access denied: dpo 'dana' of agency 'health' via client 'cli' may not approve the "
        "draft by 'dana' of agency 'health'; a draft needs approval by a second DPO of the "
        "same agency, not its author",
    )
    assert policy(data_dir, "publish", draft, *DANA) == (
        2,
        "draft health-1 is submitted; publish needs an approved draft (submit it, then have "
        "a second DPO approve it)",
    )
    assert policy(data_dir, "approve", draft, "--comment", "agreed", *BO) == (
        0,
        "draft health-1 approved by bo (health)",
    )
    status, output = policy(data_dir, "publish", draft, "--reason", "counts end", *DANA)
    assert (status, output.split(",")[0]) == (0, "published v2")
    assert read_published(data_dir).label == "v2"
    assert policy(data_dir, "rollback", "v1", "--reason", "until March", *BO) == (
        0,
        "published v3 with the documents of v1 (rollback)",
    )
    assert read_published(data_dir).agreements == read_version(data_dir, 1)[2]
    status, history = policy(data_dir, "history")
    for expected in ("v2", "dana (health)", "bo (health)", "counts end", "rollback", "v3"):
        assert expected in history


def test_validate_refuses_files_with_an_unknown_purpose_naming_the_path(
    data_dir: Path, tmp_path: Path
) -> None:
    agreements = read_published(data_dir).agreements
    at = [a["id"] for a in agreements["agreements"]].index("dsa-research-cohort")
    agreements["agreements"][at]["purposes"] = ["research", "marketing"]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(agreements))
    assert policy(data_dir, "validate", str(path)) == (
        1,
        f"{path} cannot be published: 1 problem(s) - agreements $.agreements[{at}].purposes[1]: "
        "unknown purpose 'marketing'",
    )


def test_validate_refuses_a_rego_file_that_does_not_compile(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "decision.rego"
    path.write_text("package datause.decision\n\ndecision := {\n", encoding="utf-8")
    status, output = policy(data_dir, "validate", str(path))
    assert status == 1
    assert "rego decision.rego line 3, column 13: does not compile: this is unclosed" in output


def test_acting_needs_an_identity(data_dir: Path) -> None:
    assert policy(data_dir, "draft", "new") == (
        2,
        "say who you are: --token TOKEN (or DATATRUST_TOKEN), or on this machine "
        "--as-user NAME --agency AGENCY --role dpo",
    )


def test_a_token_no_node_trusts_is_refused(data_dir: Path) -> None:
    status, message = policy(data_dir, "submit", "health-1", "--token", "not-a-token")
    assert status == 2
    assert message.startswith("the token is not accepted by any node: council: ")


def test_policy_test_replays_the_decision_table() -> None:
    status, output = policy(None, "test")
    assert status == 0
    assert re.search(
        r"decision table on embedded: (\d+)/\1 cases give the recorded decision$", output
    )


def test_policy_test_fails_when_the_rego_decides_differently(tmp_path: Path) -> None:
    changed = tmp_path / "datause"
    shutil.copytree(default_policy_dir(), changed)
    rego = changed / "decision.rego"
    rego.write_text(rego.read_text().replace("as aggregates only", "only as aggregates"))
    status, output = policy(None, "test", "--policy-dir", str(changed))
    assert status == 1
    assert re.search(r"FAIL [^:]+ reasons: expected \[[^]]*as aggregates only", output)
    assert "only as aggregates" in output
