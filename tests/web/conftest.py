"""Browser tests: a real trust (``datatrust up``), Debian's Chromium through Playwright, axe-core.

Chromium is never downloaded: the tests launch ``/usr/bin/chromium`` (``.ci/run`` installs
Debian's package) with the flags that work on a closed network. axe-core comes from npm
into ``tests/web/axe`` (``npm ci --prefix tests/web/axe``) and is injected into each page.
Without any of them the tests skip, saying which is missing; under CI=true they fail.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 375, "height": 812}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        _unavailable(f"no browser: {CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        _unavailable(f"no axe-core: {AXE} is missing (npm ci --prefix tests/web/axe)")
    return AXE.read_text(encoding="utf-8")


class RunningTrust:
    """``datatrust up`` in a temporary directory, and what the tests read from it."""

    def __init__(self, trust) -> None:
        self.trust = trust
        self.data_dir: Path = trust.data_dir
        self.portal: str = trust.run["portal"]
        self.identity: str = trust.run["identity"]
        credentials = self.data_dir / "identity" / "demo-credentials.json"
        self.passwords = json.loads(credentials.read_text(encoding="utf-8"))["passwords"]

    def pseudonym(self, nhs_number: str) -> str:
        from datatrust.trust import load_or_create_key, person_pseudonym

        return person_pseudonym(
            load_or_create_key(self.data_dir / "keys" / "pseudonym.key"), nhs_number
        )

    def consent_state(self, node: str, pseudonym: str, purpose: str = "research") -> str | None:
        """The state in the node's own consent table (its SQLite store)."""
        with sqlite3.connect(self.data_dir / f"{node}.db") as db:
            row = db.execute(
                "SELECT state FROM consent WHERE pseudonym = ? AND controller = ? "
                "AND purpose_id = ?",
                (pseudonym, node, purpose),
            ).fetchone()
        return row[0] if row else None


@pytest.fixture(scope="module")
def running(tmp_path_factory, browser) -> Iterator[RunningTrust]:
    """The module's own trust: for journeys that change consent, opt-outs or policy."""
    from tests._trust import Trust

    trust = Trust(tmp_path_factory.mktemp("web-trust"))
    try:
        yield RunningTrust(trust)
    finally:
        trust.stop()


@pytest.fixture(scope="package")
def shared_running(tmp_path_factory, browser) -> Iterator[RunningTrust]:
    """One trust for the modules that only sign in, look and ask (a module opts in by
    overriding ``running`` with it), so each does not wait for its own ``datatrust up``.
    They leave consent, opt-outs and the published policy as the demo made them; at most
    the console gets a draft. Not the session's demo trust: that one stops before
    tests/test_up.py, whose restart must not meet another trust's live feed.
    """
    from tests._trust import Trust

    trust = Trust(tmp_path_factory.mktemp("web-shared-trust"))
    try:
        yield RunningTrust(trust)
    finally:
        trust.stop()
