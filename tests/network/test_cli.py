"""``datatrust init`` and ``datatrust directory show|sign|verify`` as an operator runs them."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from datatrust._network_cli import init_local_trust
from datatrust.network import TrustDirectory, load_or_create_operator_key, sign_directory


def datatrust(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datatrust", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250"},
        timeout=60,
    )


def files(data_dir: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(data_dir)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(data_dir.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def initialised(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("cli") / "trust"
    result = datatrust("init", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return data_dir


def test_init_creates_keys_ca_certificates_and_a_signed_directory(initialised):
    assert sorted(files(initialised)) == [
        "directory.json",
        "directory.jws",
        "keys/operator.pem",
        "keys/operator.pub.pem",
        "keys/overlap.key",  # nodes' only (cross-agency counts); the gateway never loads it
        "policies/.lock",
        "policies/current.json",
        *(f"policies/versions/1/{n}.json" for n in ["agreements", "manifest", "purposes"]),
        *(f"tls/{n}" for n in ["ca.key", "ca.pem", "council.key", "council.pem"]),
        *(f"tls/{n}" for n in ["gateway.key", "gateway.pem", "health.key", "health.pem"]),
        *(f"tls/{n}" for n in ["identity.key", "identity.pem", "social-care.key"]),
        *(f"tls/{n}" for n in ["social-care.pem", "tool.key", "tool.pem"]),
    ]
    private = {
        str(p.relative_to(initialised)): stat.S_IMODE(p.stat().st_mode)
        for p in [
            *initialised.glob("tls/*.key"),
            initialised / "keys" / "operator.pem",
            initialised / "keys" / "overlap.key",
        ]
    }
    assert set(private.values()) == {0o600}
    assert stat.S_IMODE((initialised / "keys").stat().st_mode) == 0o700


def test_a_second_init_changes_no_file(initialised):
    before = files(initialised)
    result = datatrust("init", data_dir=initialised)
    assert result.returncode == 0, result.stderr
    assert "(version 1, unchanged, expires " in result.stdout
    assert "Policy: v1 (agreements 2026-11-26, purposes 2026-11-01), in force\n" in result.stdout
    assert files(initialised) == before


def test_init_publishes_the_shipped_documents_as_policy_version_1_once(tmp_path):
    from datatrust.policies.documents import demo_agreements, demo_register
    from datatrust.policies.lifecycle import read_published, version_numbers

    first = init_local_trust(tmp_path)
    published = read_published(tmp_path)
    assert (first.policy_version, first.is_policy_published_now) == (
        "v1 (agreements 2026-11-26, purposes 2026-11-01)",
        True,
    )
    assert (published.label, published.agreements, published.register) == (
        "v1",
        demo_agreements(),
        demo_register(),
    )
    manifest = json.loads((tmp_path / "policies" / "versions" / "1" / "manifest.json").read_text())
    assert (manifest["kind"], manifest["author"]) == ("initial", "datatrust init")
    again = init_local_trust(tmp_path)
    assert (again.policy_version, again.is_policy_published_now) == (first.policy_version, False)
    assert version_numbers(tmp_path) == [1]


def test_init_lists_the_demo_parts_with_their_certificates_and_endpoints(initialised):
    document = json.loads((initialised / "directory.json").read_text())
    fingerprints = {m["node_id"]: m["certificate_sha256"] for m in document["members"]}
    assert [(m["node_id"], m["endpoint"]) for m in document["members"]] == [
        ("council", "https://127.0.0.1:8401"),
        ("health", "https://127.0.0.1:8402"),
        ("social-care", "https://127.0.0.1:8403"),
    ]
    assert document["members"][0]["issuers"] == [
        {"issuer": "http://127.0.0.1:8404", "jwks_uri": "http://127.0.0.1:8404/jwks.json"}
    ]
    assert document["gateway"]["endpoint"] == "https://127.0.0.1:8400"
    assert [t["name"] for t in document["tools"]] == ["tool"]
    assert document["agencies"] == [
        {"agency": name, "issuers": document["members"][0]["issuers"]}
        for name in ("university", "public")
    ]
    result = datatrust("init", data_dir=initialised)
    for part, fingerprint in fingerprints.items():
        assert f"{part}: {initialised}/tls/{part}.pem (sha256 {fingerprint})" in result.stdout


def test_verify_says_valid_with_the_version_and_expiry(initialised):
    result = datatrust("directory", "verify", data_dir=initialised)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"{initialised}/directory.jws: valid: 'datatrust demo trust' version 1, 3 members, "
        "signed by the operator key, expires "
    )


def test_show_prints_every_party_and_the_signature_status(initialised):
    result = datatrust("directory", "show", data_dir=initialised)
    assert result.returncode == 0, result.stderr
    for name in ["council", "health", "social-care", "gateway", "tool", "https://127.0.0.1:8402"]:
        assert name in result.stdout
    assert "no node; issuers: http://127.0.0.1:8404" in result.stdout
    assert "Signature: valid (operator key). Issued " in result.stdout


def test_a_tampered_directory_fails_verify_and_show_with_the_reason(tmp_path, initialised):
    signed = (initialised / "directory.jws").read_text().strip()
    header, payload, signature = signed.split(".")
    tampered = tmp_path / "tampered.jws"
    tampered.write_text(
        f"{header}.{payload[:-5]}{'A' if payload[-5] != 'A' else 'B'}{payload[-4:]}.{signature}"
    )
    result = datatrust("directory", "verify", str(tampered), data_dir=initialised)
    assert (result.returncode, result.stderr) == (
        1,
        f"{tampered}: NOT VALID: the signature does not match the operator's key: the "
        "directory was changed after it was signed, or signed with another key "
        "(bad_signature)\n",
    )


def test_an_expired_directory_fails_verify_saying_it_expired(tmp_path):
    init_local_trust(tmp_path, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=31))
    result = datatrust("directory", "verify", data_dir=tmp_path)
    assert result.returncode == 1
    assert "NOT VALID: version 1 expired at " in result.stderr
    assert result.stderr.endswith(
        ": the operator must sign a fresh one (datatrust directory sign)\n"
    )
    assert datatrust("directory", "show", data_dir=tmp_path).returncode == 1
    assert "unchanged" not in datatrust("init", data_dir=tmp_path).stdout  # init re-signs it


def test_sign_writes_an_edited_directory_that_verifies(tmp_path):
    init_local_trust(tmp_path)
    edited = json.loads((tmp_path / "directory.json").read_text())
    edited["members"] = edited["members"][:2]
    edited["version"] = 2
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    result = datatrust("directory", "sign", str(path), data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Signed version 2 into {tmp_path}/directory.jws (expires ")
    verified = datatrust("directory", "verify", data_dir=tmp_path)
    assert "version 2, 2 members" in verified.stdout


def test_sign_refuses_a_change_without_a_new_version(tmp_path):
    init_local_trust(tmp_path)
    edited = json.loads((tmp_path / "directory.json").read_text())
    edited["tools"] = []
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    result = datatrust("directory", "sign", str(path), data_dir=tmp_path)
    assert (result.returncode, " ".join(result.stderr.split())) == (
        2,
        f"error: {path}: version 1 is not above the signed directory's version 1; raise it, "
        "or nodes will refuse the change",
    )


def test_sign_refuses_a_document_that_breaks_a_rule_naming_where(tmp_path):
    init_local_trust(tmp_path)
    edited = json.loads((tmp_path / "directory.json").read_text())
    edited["members"][2]["endpoint"] = "http://127.0.0.1:8403"
    edited["version"] = 2
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    result = datatrust("directory", "sign", str(path), data_dir=tmp_path)
    assert (result.returncode, " ".join(result.stderr.split())) == (
        2,
        f"error: {path}: members[2].endpoint: 'http://127.0.0.1:8403' is not an https URL: "
        "members talk only over mutual TLS",
    )


def test_sign_refuses_a_document_that_would_not_verify_now(tmp_path):
    init_local_trust(tmp_path)
    edited = json.loads((tmp_path / "directory.json").read_text())
    edited |= {
        "version": 2,
        "issued_at": "2020-01-01T00:00:00Z",
        "expires_at": "2020-02-01T00:00:00Z",
    }
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    result = datatrust("directory", "sign", str(path), data_dir=tmp_path)
    assert (result.returncode, " ".join(result.stderr.split())) == (
        2,
        f"error: {path}: not signed, it would not verify: version 2 expired at "
        "2020-02-01T00:00:00Z: the operator must sign a fresh one (datatrust directory sign)",
    )


def test_init_keeps_members_an_operator_added(tmp_path):
    first = init_local_trust(tmp_path)
    document = first.directory.to_document()
    housing = {**document["members"][0], "agency": "housing", "node_id": "housing"}
    housing["certificate_sha256"] = "0" * 64
    document |= {"version": 2, "members": [*document["members"], housing]}
    key = load_or_create_operator_key(tmp_path)
    signed = sign_directory(TrustDirectory.from_document(document), key)
    (tmp_path / "directory.jws").write_text(signed)
    again = init_local_trust(tmp_path)
    assert (again.is_directory_signed_now, again.directory.version) == (False, 2)
    moved = init_local_trust(tmp_path, base_port=9400)
    assert moved.directory.version == 3
    assert [m.endpoint for m in moved.directory.members] == [
        "https://127.0.0.1:9401",
        "https://127.0.0.1:9402",
        "https://127.0.0.1:9403",
        "https://127.0.0.1:8401",
    ]


def test_init_keeps_agencies_an_operator_added_and_drops_a_demo_one_given_a_node(tmp_path):
    first = init_local_trust(tmp_path)
    document = first.directory.to_document()
    issuers = document["members"][0]["issuers"]
    university = {
        **document["members"][0],
        "agency": "university",
        "node_id": "university",
        "certificate_sha256": "0" * 64,
    }
    document |= {
        "version": 2,
        "members": [*document["members"], university],
        "agencies": [
            {"agency": "housing", "issuers": issuers},
            {"agency": "public", "issuers": issuers},
        ],
    }
    key = load_or_create_operator_key(tmp_path)
    signed = sign_directory(TrustDirectory.from_document(document), key)
    (tmp_path / "directory.jws").write_text(signed)
    again = init_local_trust(tmp_path)
    assert (again.is_directory_signed_now, again.directory.version) == (False, 2)
    assert [a.agency for a in again.directory.agencies] == ["housing", "public"]
    moved = init_local_trust(tmp_path, base_port=9400)
    assert moved.directory.version == 3
    assert [a.agency for a in moved.directory.agencies] == ["housing", "public"]
    assert [m.node_id for m in moved.directory.members][-1] == "university"


def test_init_adds_the_demo_agencies_to_a_directory_signed_before_they_existed(tmp_path):
    first = init_local_trust(tmp_path)
    document = first.directory.to_document()
    del document["agencies"]
    key = load_or_create_operator_key(tmp_path)
    (tmp_path / "directory.jws").write_text(
        sign_directory(TrustDirectory.from_document(document), key)
    )
    upgraded = init_local_trust(tmp_path)
    assert (upgraded.is_directory_signed_now, upgraded.directory.version) == (True, 2)
    assert [a.agency for a in upgraded.directory.agencies] == ["university", "public"]
