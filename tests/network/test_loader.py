"""A node keeps its last good directory when a new file is tampered, expired or older."""

from __future__ import annotations

import datetime as dt
import logging

import httpx
import pytest

from datatrust.network import (
    DirectoryError,
    DirectoryLoad,
    DirectoryWatcher,
    TrustDirectory,
    client_ssl_context,
    load_directory,
)
from tests.network.conftest import NOW, directory_document, running_node


def tamper(signed: str) -> str:
    header, payload, signature = signed.split(".")
    return f"{header}.{payload[:40]}{'A' if payload[40] != 'A' else 'B'}{payload[41:]}.{signature}"


@pytest.fixture
def path(tmp_path):
    return tmp_path / "directory.jws"


@pytest.fixture
def good(trust, path) -> TrustDirectory:
    document = directory_document(trust.pki)
    path.write_text(trust.sign(document), encoding="ascii")
    return TrustDirectory.from_document(document)


def test_a_good_file_is_loaded(trust, path, good):
    assert load_directory(path, trust.operator_key, now=NOW) == DirectoryLoad(good, True)


def test_a_tampered_file_is_refused_and_the_last_good_directory_kept_saying_why(
    trust, path, good, caplog
):
    path.write_text(tamper(path.read_text()), encoding="ascii")
    with caplog.at_level(logging.WARNING, logger="datatrust.network"):
        loaded = load_directory(path, trust.operator_key, good, now=NOW)
    reason = (
        f"{path}: the signature does not match the operator's key: the directory was changed "
        "after it was signed, or signed with another key (bad_signature)"
    )
    assert loaded == DirectoryLoad(good, False, f"{reason} (keeping version 1)")
    assert caplog.messages == [f"refused the trust directory {reason}; keeping version 1"]


def test_an_expired_file_is_refused_and_the_last_good_directory_kept(trust, path, good):
    stale = directory_document(trust.pki, version=2, now=NOW - dt.timedelta(days=40))
    path.write_text(trust.sign(stale), encoding="ascii")
    loaded = load_directory(path, trust.operator_key, good, now=NOW)
    assert (loaded.directory, loaded.is_from_file) == (good, False)
    assert loaded.problem == (
        f"{path}: version 2 expired at 2026-02-20T09:30:00Z: the operator must sign a fresh one "
        "(datatrust directory sign) (keeping version 1)"
    )


def test_an_older_version_cannot_replace_a_newer_one(trust, path, good):
    newer = TrustDirectory.from_document(directory_document(trust.pki, version=3))
    loaded = load_directory(path, trust.operator_key, newer, now=NOW)
    assert loaded.problem == (
        f"{path}: version 1 is older than the directory in force (version 3); an old directory "
        "may not replace a newer one (keeping version 3)"
    )


def test_the_same_version_with_other_content_is_refused(trust, path, good):
    changed = directory_document(trust.pki)
    changed["tools"] = []
    path.write_text(trust.sign(changed), encoding="ascii")
    assert load_directory(path, trust.operator_key, good, now=NOW).problem == (
        f"{path}: version 1 is already in force with different content; the operator must "
        "raise the version for every change (keeping version 1)"
    )


def test_without_a_last_good_directory_a_bad_file_is_an_error(trust, path):
    with pytest.raises(DirectoryError) as caught:
        load_directory(path, trust.operator_key, now=NOW)
    assert caught.value.message == f"{path}: no signed directory here: run datatrust init"


def test_when_the_last_good_directory_has_expired_too_nothing_is_accepted(trust, path, good):
    path.write_text("garbage", encoding="ascii")
    with pytest.raises(DirectoryError, match=r"and the last good directory \(version 1\) expired"):
        load_directory(path, trust.operator_key, good, now=NOW + dt.timedelta(days=31))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def test_the_watcher_reloads_a_changed_file_and_keeps_the_last_good_one(trust, path, good):
    clock = Clock()
    watcher = DirectoryWatcher(path, trust.operator_key, check_interval_seconds=0, now=clock)
    assert watcher() == good
    path.write_text(tamper(trust.sign(directory_document(trust.pki, version=2))), "ascii")
    assert (watcher(), watcher.problem.endswith("(keeping version 1)")) == (good, True)
    path.write_text(trust.sign(directory_document(trust.pki, version=2)), encoding="ascii")
    assert (watcher().version, watcher.problem) == (2, None)
    clock.now = NOW + dt.timedelta(days=30)
    with pytest.raises(DirectoryError) as caught:
        watcher()
    assert caught.value.message == (
        "the trust directory in force (version 2) expired at 2026-04-01T09:30:00+00:00; no peer "
        f"is accepted until the operator signs a fresh one into {path}"
    )


def test_a_running_node_keeps_its_last_good_directory_when_the_file_is_tampered(trust, path):
    now = dt.datetime.now(dt.UTC)
    path.write_text(trust.sign(directory_document(trust.pki, now=now)), encoding="ascii")
    watcher = DirectoryWatcher(path, trust.operator_key, check_interval_seconds=0)
    tool = client_ssl_context(*trust.pki.files("tool"))
    with running_node(trust.pki.files("council"), watcher) as node, httpx.Client(verify=tool) as c:
        assert c.get(f"{node.url}/whoami").status_code == 200
        # A forged version 2 that lists the stranger certificate, with one byte changed.
        forged = directory_document(trust.pki, version=2, now=now)
        forged["tools"].append(
            {"name": "stranger", "certificate_sha256": trust.pki.fingerprints["stranger"]}
        )
        path.write_text(tamper(trust.sign(forged)), encoding="ascii")
        assert c.get(f"{node.url}/whoami").status_code == 200
        assert watcher.problem.endswith("(keeping version 1)")
        stranger = client_ssl_context(*trust.pki.files("stranger"))
        with httpx.Client(verify=stranger) as other:
            assert other.get(f"{node.url}/whoami").status_code == 403


def test_a_running_node_refuses_every_peer_once_its_directory_has_expired(trust, path):
    now = dt.datetime.now(dt.UTC)
    path.write_text(trust.sign(directory_document(trust.pki, now=now)), encoding="ascii")
    clock = Clock()
    clock.now = now
    watcher = DirectoryWatcher(path, trust.operator_key, now=clock)
    tool = client_ssl_context(*trust.pki.files("tool"))
    with running_node(trust.pki.files("council"), watcher) as node, httpx.Client(verify=tool) as c:
        clock.now = now + dt.timedelta(days=31)
        response = c.get(f"{node.url}/whoami")
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"] == {"code": "DIRECTORY_INVALID"}
