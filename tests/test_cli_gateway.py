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
