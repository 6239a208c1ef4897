"""Served processes log one JSON object per line, with the request and trace they belong to.

In process (tests/_observed.py), every line the trust writes while answering must parse
and name the request id and the trace and span it was written in. As a process,
``datatrust serve node`` must log only JSON lines by default, continuing a caller's
``traceparent`` in its own span; ``DATATRUST_LOG_FORMAT`` chooses, and refuses a typo.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from uvicorn.config import LOGGING_CONFIG

from datatrust._logs import JsonLogFormatter, configure_logging
from datatrust._ports import free_port
from datatrust.errors import SettingsError
from tests._observed import AREAS, ObservedTrust, observed_trust

KEYS = {"time", "level", "logger", "message", "request_id", "trace_id", "span_id"}
CALLER_TRACE, CALLER_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trust(tmp_path_factory) -> ObservedTrust:
    with observed_trust(tmp_path_factory.mktemp("logged")) as trust:
        yield trust


def test_every_line_written_while_answering_is_json_naming_its_request_trace_and_span(trust):
    before = len(trust.log_lines())
    response = trust.ask(AREAS, trust.identity.headers("service-planning"))
    assert response.status_code == 200, response.text
    lines = trust.log_lines()[before:]
    assert lines
    assert all(set(line) >= KEYS for line in lines), lines
    request_id = response.headers["x-request-id"]
    (gateway_line,) = [line for line in lines if line.get("component") == "gateway"]
    assert (gateway_line["request_id"], gateway_line["level"], gateway_line["status"]) == (
        request_id,
        "INFO",
        200,
    )
    (root,) = [
        s
        for s in trust.spans.get_finished_spans()
        if s.parent is None and f"{s.context.trace_id:032x}" == gateway_line["trace_id"]
    ]
    assert gateway_line["span_id"] == f"{root.context.span_id:016x}"
    assert gateway_line["message"] == "POST /graphql answered 200"


def test_a_line_outside_any_request_has_null_ids_and_keeps_its_extra_fields():
    record = logging.LogRecord(
        "datatrust.test", logging.WARNING, __file__, 1, "%s left", ("x",), None
    )
    record.records_loaded = 3
    line = json.loads(JsonLogFormatter().format(record))
    assert {k: line[k] for k in line if k != "time"} == {
        "level": "WARNING",
        "logger": "datatrust.test",
        "message": "x left",
        "request_id": None,
        "trace_id": None,
        "span_id": None,
        "records_loaded": 3,
    }


@pytest.fixture
def root_logging():
    """Whatever configure_logging does to the root logger is undone afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_log_format_is_chosen_by_datatrust_log_format_and_a_typo_is_refused(root_logging):
    assert configure_logging("json", environ={}) is None
    assert isinstance(root_logging.handlers[-1].formatter, JsonLogFormatter)
    assert configure_logging("json", environ={"DATATRUST_LOG_FORMAT": "text"}) == LOGGING_CONFIG
    assert not isinstance(root_logging.handlers[-1].formatter, JsonLogFormatter)
    assert len(root_logging.handlers) == 1
    with pytest.raises(
        SettingsError, match="DATATRUST_LOG_FORMAT is 'jsno'; set it to one of: json, text"
    ):
        configure_logging("json", environ={"DATATRUST_LOG_FORMAT": "jsno"})


def test_serve_node_logs_only_json_lines_in_its_own_span_of_the_callers_trace(tmp_path: Path):
    port = free_port()
    config = tmp_path / "council.toml"
    config.write_text(
        f'node_id = "council"\nagency = "council"\nport = {port}\n'
        f"data_dir = {json.dumps(str(tmp_path))}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATATRUST_", "OTEL_"))}
    node = subprocess.Popen(
        [sys.executable, "-m", "datatrust", "serve", "node", "--config", str(config)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            _wait_ready(client, node)
            response = client.post(
                "/graphql",
                json={"query": "{ areas(first: 2) { code name } }"},
                headers={
                    "Purpose": "service-planning",
                    "X-Request-Id": "json-log-1",
                    "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
                },
            )
        assert response.status_code == 401, response.text  # no token: refused and audited
    finally:
        node.terminate()
        output, errors = node.communicate(timeout=20)
    lines = [json.loads(line) for line in (output + errors).splitlines()]  # each must parse
    (answered,) = [line for line in lines if line.get("request_id") == "json-log-1"]
    assert (answered["logger"], answered["status"], answered["trace_id"]) == (
        "datatrust.http",
        401,
        CALLER_TRACE,
    )
    assert len(answered["span_id"]) == 16
    assert answered["span_id"] != CALLER_SPAN  # the node's own span, a child of the caller's
    with sqlite3.connect(tmp_path / "council.db") as db:
        audited = db.execute("SELECT request_id, trace_id, code FROM audit_event").fetchall()
    assert audited == [("json-log-1", CALLER_TRACE, "UNAUTHENTICATED")]


def _wait_ready(client: httpx.Client, node: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if node.poll() is not None:
            pytest.fail(f"datatrust serve node ended early: {node.communicate()}")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail("datatrust serve node was not ready within 30 s")
