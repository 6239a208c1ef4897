"""``datatrust gateway plan``: the plan in Apollo's shape, from this release's subgraphs."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from datatrust.cli import app

RESEARCH = "{ patients(first: 50) { pseudonym birthYear careEpisodes { serviceType } } }"


def test_a_join_across_nodes_plans_a_root_fetch_then_one_entities_call():
    result = CliRunner().invoke(app, ["gateway", "plan", RESEARCH])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith('QueryPlan {\n  Sequence {\n    Fetch(service: "health")')
    assert 'Flatten(path: "patients.@")' in out
    assert 'Fetch(service: "social-care")' in out
    assert out.index('"health"') < out.index('"social-care"')


def test_the_query_can_come_from_standard_input_and_a_bad_one_is_named():
    runner = CliRunner()
    piped = runner.invoke(app, ["gateway", "plan", "-"], input="{ areas { code footfall } }")
    assert piped.exit_code == 0, piped.output
    assert 'Fetch(service: "council")' in piped.output
    bad = subprocess.run(
        [sys.executable, "-m", "datatrust", "gateway", "plan", "{ nope }"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "Cannot query field 'nope' on type 'Query'" in bad.stderr


def test_the_planning_query_asks_every_node_at_once_unless_no_keys_first():
    query = (
        '{ areas(first: 5) { code name footfall(since: "2026-10-01") encounterCount '
        "openCareEpisodes } }"
    )
    runner = CliRunner()
    keys_first = runner.invoke(app, ["gateway", "plan", query])
    sequential = runner.invoke(app, ["gateway", "plan", "--no-keys-first", query])
    assert keys_first.exit_code == 0, keys_first.output
    assert sequential.exit_code == 0, sequential.output
    assert keys_first.output.count('Fetch(service: "council")') == 2
    parallel = keys_first.output[keys_first.output.index("Parallel {") :]
    assert 'footfall(since: "2026-10-01")' in parallel
    assert 'Fetch(service: "council")' in parallel
    assert sequential.output.count('Fetch(service: "council")') == 1
    assert sequential.output.index("footfall") < sequential.output.index("Parallel {")
