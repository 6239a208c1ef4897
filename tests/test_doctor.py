"""``datatrust doctor`` on a real running trust, then on copies of it with one thing broken.

Each misconfiguration is made with the product's own code (the operator key signs the
directory, the PKI issues certificates, the node wrote the audit rows) in a copy of the
running trust's data directory, so the running trust stays healthy for the next test; the
copy's ``run.json`` still points at the running processes.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from datatrust._doctor_cli import SDL_QUERY, composition_finding
from datatrust._doctor_reach import Answer, clock_finding
from datatrust._identity_cli import request_token
from datatrust._network_cli import init_local_trust
from datatrust._ports import free_port
from datatrust.cli import app
from datatrust.network import (
    TrustDirectory,
    certificate_fingerprint,
    init_trust_pki,
    load_or_create_operator_key,
    server_ssl_context,
    sign_directory,
)
from tests._trust import Trust, free_base_port, post, tool_tls

pytestmark = pytest.mark.slow

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def trust(demo_trust: Trust) -> Trust:
    """The shared demo trust (tests/conftest.py): the doctor only reads it; each
    misconfiguration is made in a copy of its data directory."""
    bearer = request_token(
        demo_trust.run["identity"], demo_trust.data_dir, "service-planning", "analyst-cli"
    )
    query = "{ areas(first: 2) { code footfall } }"
    answer = post(demo_trust.run["gateway"], query, "service-planning", bearer=bearer)
    assert answer.status_code == 200, answer.text  # so every node's ledger has entries
    return demo_trust


def doctor(data_dir: Path, *options: str):
    return CliRunner().invoke(app, ["doctor", "--data-dir", str(data_dir), *options])


def copy_of(trust: Trust, tmp_path: Path) -> Path:
    """The running trust's data directory, copied; SQLite stores through the backup API."""
    copy = tmp_path / "copy"
    stores = ("*.db", "*.db-wal", "*.db-shm")
    shutil.copytree(trust.data_dir, copy, ignore=shutil.ignore_patterns(*stores, "logs", "demo"))
    for store in trust.data_dir.glob("*.db"):
        with sqlite3.connect(store) as source, sqlite3.connect(copy / store.name) as target:
            source.backup(target)
    return copy


def resign(data_dir: Path, change) -> None:
    """Edit the directory document with ``change`` and sign it with the operator key."""
    document = json.loads((data_dir / "directory.json").read_text())
    change(document)
    directory = TrustDirectory.from_document(document)
    signed = sign_directory(directory, load_or_create_operator_key(data_dir))
    (data_dir / "directory.jws").write_text(signed + "\n")
    (data_dir / "directory.json").write_text(json.dumps(directory.to_document(), indent=2))


def member(document: dict, node_id: str) -> dict:
    return next(m for m in document["members"] if m["node_id"] == node_id)


def lines(output: str, status: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(status)]


def test_doctor_finds_nothing_wrong_with_a_running_trust(trust):
    result = doctor(trust.data_dir)
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("No problems found.")
    assert lines(result.output, "problem") == []
    report = json.loads(doctor(trust.data_dir, "--json").output)
    assert report["ok"] is True
    assert report["problems"] == 0
    seen = {(f["check"], f["subject"]) for f in report["findings"] if f["status"] == "ok"}
    for node in ("council", "health", "social-care"):
        assert ("reachability", f"{node} node") in seen
        assert ("clocks", f"{node} node") in seen
        assert ("certificates", f"{node} certificate") in seen
        assert ("audit", f"{node} ledger") in seen
    assert {("directory", "signed directory"), ("schema", "composition")} <= seen
    assert ("reachability", "gateway") in seen
    assert ("clocks", "identity server") in seen
    council = next(f for f in report["findings"] if f["subject"] == "council ledger")
    assert council["message"] != "intact (0 entries)"


def test_an_expired_directory_is_reported_with_its_date_and_what_to_do(trust, tmp_path):
    copy = copy_of(trust, tmp_path)
    expired = NOW - dt.timedelta(days=6, hours=1)

    def expire(document: dict) -> None:
        document["issued_at"] = _iso(expired - dt.timedelta(days=30))
        document["expires_at"] = _iso(expired)

    resign(copy, expire)
    result = doctor(copy)
    assert result.exit_code == 1
    [line] = [line for line in lines(result.output, "problem") if "directory:" in line]
    assert f"expired on {expired.date().isoformat()} (6 days ago)" in line
    assert "nodes refuse each other" in line
    assert "`datatrust directory sign directory.json`" in line


def test_a_directory_expiring_soon_is_a_warning_not_a_problem(trust, tmp_path):
    copy = copy_of(trust, tmp_path)
    resign(copy, lambda d: d.update(expires_at=_iso(NOW + dt.timedelta(days=3, hours=1))))
    result = doctor(copy)
    assert result.exit_code == 0, result.output
    [line] = lines(result.output, "warning")
    assert "expires on" in line
    assert "(3 days from now)" in line


def test_a_certificate_from_another_ca_and_one_with_a_wrong_name_are_reported(trust, tmp_path):
    copy = copy_of(trust, tmp_path)
    stranger = init_trust_pki(tmp_path / "other", ["council"], trust_name="another trust")
    for suffix in (".pem", ".key"):
        shutil.copy(
            stranger.parts["council"].cert.with_suffix(suffix), copy / "tls" / f"council{suffix}"
        )
    same_ca = tmp_path / "same-ca"
    (same_ca / "tls").mkdir(parents=True)
    for name in ("ca.pem", "ca.key"):
        shutil.copy(copy / "tls" / name, same_ca / "tls" / name)
    misnamed = init_trust_pki(same_ca, ["health"], subject_names=("health.example.org",))
    for suffix in (".pem", ".key"):
        shutil.copy(
            misnamed.parts["health"].cert.with_suffix(suffix), copy / "tls" / f"health{suffix}"
        )
    fingerprint = certificate_fingerprint((copy / "tls" / "health.pem").read_bytes())
    resign(copy, lambda d: member(d, "health").update(certificate_sha256=fingerprint))

    result = doctor(copy)
    assert result.exit_code == 1
    problems = lines(result.output, "problem")
    [council] = [line for line in problems if "council certificate" in line]
    assert "was not issued by this trust's CA" in council
    assert "'another trust trust CA'" in council
    assert "every other part will refuse it in the TLS handshake" in council
    [health] = [line for line in problems if "health certificate" in line]
    assert (
        "names health.example.org, but the directory lists health at https://127.0.0.1:" in health
    )
    assert "the name does not match" in health
    [served] = [line for line in problems if "reachability: health node" in line]
    assert "serves a certificate" in served
    assert "does not list for it" in served


def test_an_unreachable_node_is_named_with_its_address_and_why(trust, tmp_path):
    copy = copy_of(trust, tmp_path)
    closed = free_port()
    resign(copy, lambda d: member(d, "council").update(endpoint=f"https://127.0.0.1:{closed}"))
    result = doctor(copy)
    assert result.exit_code == 1
    [line] = lines(result.output, "problem")
    assert f"Cannot reach the council node at https://127.0.0.1:{closed}" in line
    assert "the connection was refused: nothing listens at that address" in line
    [schema] = [line for line in lines(result.output, "warning") if "schema" in line]
    assert "without the subgraphs of council" in schema


def test_a_node_listed_at_another_nodes_address_is_named(trust, tmp_path):
    copy = copy_of(trust, tmp_path)
    social_care = trust.run["nodes"]["social-care"].removesuffix("/graphql")
    resign(copy, lambda d: member(d, "health").update(endpoint=social_care))
    result = doctor(copy)
    assert result.exit_code == 1
    [health] = lines(result.output, "problem")
    assert f"At {social_care}, the directory's address for the health node" in health
    assert "the social-care node answers" in health
    [schema] = [line for line in lines(result.output, "warning") if "schema" in line]
    assert "without the subgraphs of health" in schema


def test_subgraphs_that_do_not_compose_are_reported_in_the_composers_words(trust):
    served = {
        node: post(url, SDL_QUERY, None, verify=tool_tls(trust.run)).json()["data"]["_service"]
        for node, url in trust.run["nodes"].items()
    }
    sdl = {node: answer["sdl"] for node, answer in served.items()}
    assert composition_finding(sdl, {}).status == "ok"
    sdl["health"] = sdl["social-care"]  # health's node redeployed with social-care's schema
    finding = composition_finding(sdl, {})
    assert finding.status == "problem"
    assert "do not compose into one schema" in finding.message
    assert "resolved by subgraphs 'health' and 'social-care'" in finding.message


def test_a_node_listed_at_a_plain_http_address_fails_the_tls_handshake(trust, tmp_path):
    copy = copy_of(trust, tmp_path)
    gateway = trust.run["gateway"].removesuffix("/graphql").replace("http:", "https:")
    resign(copy, lambda d: member(d, "council").update(endpoint=gateway))
    result = doctor(copy)
    assert result.exit_code == 1
    [line] = lines(result.output, "problem")
    assert f"Cannot reach the council node at {gateway}: the TLS handshake failed" in line
    assert "the address does not speak TLS" in line


def test_a_node_serving_a_certificate_from_another_ca_fails_the_tls_handshake(trust, tmp_path):
    stranger = init_trust_pki(tmp_path / "other", ["council"], trust_name="another trust")
    server = http.server.HTTPServer(("127.0.0.1", free_port()), http.server.BaseHTTPRequestHandler)
    server.socket = server_ssl_context(*stranger.files("council")).wrap_socket(
        server.socket, server_side=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        copy = copy_of(trust, tmp_path)
        address = f"https://127.0.0.1:{server.server_port}"
        resign(copy, lambda d: member(d, "council").update(endpoint=address))
        result = doctor(copy)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    [line] = lines(result.output, "problem")
    assert f"Cannot reach the council node at {address}: the TLS handshake failed" in line
    assert "because the part's certificate was not issued by this trust's CA" in line


def test_a_tampered_audit_entry_is_reported(trust, tmp_path):
    copy = copy_of(trust, tmp_path)
    with sqlite3.connect(copy / "council.db") as db:
        first = db.execute("select min(seq) from audit_event").fetchone()[0]
        db.execute("update audit_event set purpose = 'research' where seq = ?", (first,))
    result = doctor(copy)
    assert result.exit_code == 1
    [line] = lines(result.output, "problem")
    assert f"The council audit ledger is broken at entry {first}" in line
    assert "was changed, removed or reordered" in line


def test_a_stopped_trust_is_reported_node_by_node(tmp_path):
    base_port = free_base_port()
    init_local_trust(tmp_path, base_port=base_port)
    result = doctor(tmp_path, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    problems = [f for f in report["findings"] if f["status"] == "problem"]
    assert [f["subject"] for f in problems] == ["council node", "health node", "social-care node"]
    assert (
        f"https://127.0.0.1:{base_port + 1}: the connection was refused" in problems[0]["message"]
    )
    assert "no run.json" in problems[0]["fix"]
    assert "`datatrust up`" in problems[0]["fix"]


@pytest.mark.parametrize(
    ("offset_seconds", "status", "words"),
    [
        (0, "ok", "0 s off this machine's"),
        (15, "warning", "15 s ahead of this machine's"),
        (-45, "problem", "45 s behind this machine's: past the 30 s leeway for token times"),
    ],
)
def test_a_clock_is_judged_by_its_date_header(offset_seconds, status, words):
    local = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.UTC)
    theirs = local + dt.timedelta(seconds=offset_seconds)
    date = theirs.strftime("%a, %d %b %Y %H:%M:%S GMT")
    finding = clock_finding("health node", Answer("https://x/healthz", 200, {}, date, local))
    assert finding.status == status
    assert words in finding.message


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
