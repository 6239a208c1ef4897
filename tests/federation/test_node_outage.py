"""A node stopped, stalled or refusing costs only its own fields, with real processes.

The trust is made by ``datatrust up`` once, then each part is run as its own
``datatrust serve`` process from the configuration ``up`` wrote, as an operator would run
them on separate machines. That lets a test kill, pause (SIGSTOP: a node that accepts
connections but never answers) and restart one node while the gateway keeps running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from datatrust._demo_trust import EXAMPLE_PURPOSE, EXAMPLE_QUERY

from .._trust import token

GATEWAY_TIMEOUT_SECONDS = 2.0
PARTS = ("identity", "council", "health", "social-care", "gateway")


class Parts:
    """Each part of a trust as a separate ``datatrust serve`` process."""

    def __init__(self, data_dir: Path, run: dict) -> None:
        self.data_dir = data_dir
        self.run = run
        self.processes: dict[str, subprocess.Popen] = {}
        config = data_dir / "config"
        gateway = config / "gateway-outage.toml"
        gateway.write_text(
            f"timeout_seconds = {GATEWAY_TIMEOUT_SECONDS}\n"
            + (config / "gateway.toml").read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        self.configs = {
            "identity": ("identity", config / "identity.toml"),
            "gateway": ("gateway", gateway),
            **{node: ("node", config / f"{node}.toml") for node in PARTS[1:4]},
        }

    def start(self, part: str, config: Path | None = None) -> None:
        kind, default = self.configs[part]
        log = (self.data_dir / "logs" / f"outage-{part}.log").open("ab")
        self.processes[part] = subprocess.Popen(
            [sys.executable, "-m", "datatrust", "serve", kind, "--config", str(config or default)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("DATATRUST_")},
        )
        log.close()

    def kill(self, part: str) -> None:
        process = self.processes.pop(part)
        process.kill()
        process.wait(10)

    def stop_all(self) -> None:
        for part in list(self.processes):
            process = self.processes[part]
            process.send_signal(signal.SIGCONT)
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


@pytest.fixture(scope="module")
def parts(trust_parts: Parts) -> Parts:
    """The trust run part by part (``trust_parts`` in tests/conftest.py, shared with the
    fault tests), with a token taken now: the trust may have run for minutes."""
    trust_parts.token = token(trust_parts.made, EXAMPLE_PURPOSE)
    return trust_parts


def wait_until_ready(url: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready within {seconds:.0f} s")


def ask(parts: Parts) -> dict:
    response = httpx.post(
        parts.run["gateway"],
        json={"query": EXAMPLE_QUERY},
        headers={"Purpose": EXAMPLE_PURPOSE, "Authorization": f"Bearer {parts.token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def answered_in_full(parts: Parts, seconds: float = 30.0) -> dict:
    """The first full answer within ``seconds`` (a restarted node takes a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        body = ask(parts)
        if "errors" not in body or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def health_errors(body: dict) -> list[dict]:
    return [e for e in body.get("errors", []) if e.get("extensions", {}).get("node") == "health"]


def assert_partial_without_health(body: dict, full: dict) -> None:
    """Council and social-care fields as in the full answer; health's fields null."""
    assert health_errors(body), body.get("errors")
    assert all("health" in error["message"] for error in health_errors(body))
    for area, whole in zip(body["data"]["areas"], full["data"]["areas"], strict=True):
        assert area["encounterCount"] is None
        assert {k: v for k, v in area.items() if k != "encounterCount"} == {
            k: v for k, v in whole.items() if k != "encounterCount"
        }


@pytest.fixture(scope="module")
def full(parts: Parts) -> dict:
    body = answered_in_full(parts)
    assert "errors" not in body, body["errors"]
    assert all(area["encounterCount"] is not None for area in body["data"]["areas"])
    return body


def test_a_killed_node_costs_its_fields_until_it_is_restarted(parts: Parts, full: dict) -> None:
    parts.kill("health")
    assert_partial_without_health(ask(parts), full)
    parts.start("health")
    assert answered_in_full(parts) == full


def test_a_node_that_stalls_past_the_timeout_costs_its_fields_until_it_answers(
    parts: Parts, full: dict
) -> None:
    health = parts.processes["health"]
    health.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        body = ask(parts)
        waited = time.monotonic() - started
    finally:
        health.send_signal(signal.SIGCONT)
    assert_partial_without_health(body, full)
    assert any("timed out" in e["message"] or "within" in e["message"] for e in health_errors(body))
    assert waited < GATEWAY_TIMEOUT_SECONDS * 5
    assert answered_in_full(parts) == full


def test_a_node_that_refuses_costs_its_fields_and_passes_its_reason(
    parts: Parts, full: dict
) -> None:
    """Health restarted expecting another audience refuses the forwarded token itself."""
    _, config = parts.configs["health"]
    refusing = config.with_name("health-refusing.toml")
    refusing.write_text(
        'audience = "urn:datatrust:node:elsewhere"\n' + config.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    parts.kill("health")
    parts.start("health", refusing)
    try:
        deadline = time.monotonic() + 30
        while True:
            body = ask(parts)
            codes = {e["extensions"].get("code") for e in health_errors(body)}
            if "UNAUTHENTICATED" in codes or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert codes == {"UNAUTHENTICATED"}, body.get("errors")
        assert_partial_without_health(body, full)
    finally:
        parts.kill("health")
        parts.start("health")
    assert answered_in_full(parts) == full


def test_the_gateway_stays_up_throughout(parts: Parts, full: dict) -> None:
    assert parts.processes["gateway"].poll() is None
    assert httpx.get(parts.run["gateway"].replace("/graphql", "/healthz")).status_code == 200
