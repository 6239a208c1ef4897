"""Fuzzing the gateway: valid and invalid documents, variables, bodies and headers.

Every request must be answered without a 5xx, in time, as JSON, and with no data that a
node has not audited as permitted for that very request (see ``_harness``).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzz._harness import check, send
from tests.fuzz._strategies import FOUND_BEFORE, found_before, requests
from tests.fuzz.conftest import FUZZ

pytestmark = pytest.mark.slow


@FUZZ
@given(data=st.data())
def test_the_gateway_answers_every_request_well_and_audited(fuzz_trust, data):
    target = fuzz_trust.targets["gateway"]
    request = data.draw(
        requests(target.schema, fuzz_trust.samples, fuzz_trust.credentials, batches=True),
        label="request",
    )
    marks = fuzz_trust.ledgers.marks()
    response = send(fuzz_trust.client_for(target), target, request)
    event(f"{request.kind}: HTTP {response.status_code}")  # --hypothesis-show-statistics
    check(target, request, response, fuzz_trust.ledgers.since(marks))


@pytest.mark.parametrize("name", FOUND_BEFORE)
def test_the_gateway_answers_what_fuzzing_found_before_without_a_5xx(fuzz_trust, name):
    target = fuzz_trust.targets["gateway"]
    request = found_before(fuzz_trust.credentials)[name]
    marks = fuzz_trust.ledgers.marks()
    response = send(fuzz_trust.client_for(target), target, request)
    check(target, request, response, fuzz_trust.ledgers.since(marks))
    assert 400 <= response.status_code < 500 or "errors" not in response.json(), response.text


def test_every_audit_chain_verifies_after_fuzzing_the_gateway(fuzz_trust):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "datatrust",
            "audit",
            "verify",
            "--data-dir",
            str(fuzz_trust.trust.data_dir),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
