"""Fixtures shared by every test folder: a throwaway PostgreSQL database and store URLs,
and the session's shared trusts (each started once, by its first user): a demo trust for
the modules that only read from it, and a trust run part by part for those that break one
part at a time."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SESSION_TRUSTS = ("demo_trust", "trust_parts")
"""Session fixtures each stopped right after the last test that uses it, not at the end."""
STOPS = pytest.StashKey[dict[str, Callable[[], None]]]()
LAST_USERS = pytest.StashKey[dict[str, str]]()
GATEWAY_TOKEN_LEEWAY_SECONDS = 2
"""The gateway's clock leeway on token times in ``trust_parts`` (``token_leeway_seconds``,
30 by default): the identity-down fault test waits for a token to expire past it, so a
small one keeps that wait to seconds, not half a minute."""

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
"""The test server (trust auth): where throwaway databases are created and dropped."""


def _unavailable(reason: str) -> None:
    """Skip a test that needs an outside service, but fail it on CI, where it must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"datatrust_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        _unavailable(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty store database: a SQLite file in ``tmp_path``, or PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'node.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def demo_trust(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator:
    """One ``datatrust up`` (tests/_trust.py) for every module that only reads from a trust.

    Starting a whole trust takes 15 to 30 s, so the modules that only query it, fuzz it or
    copy its data directory share this one. A module that stops, kills, pauses, restarts
    or reconfigures a part, publishes policy or changes consent starts its own ``Trust``.
    Users must not rely on exact audit or row counts from before they ran (others have
    asked too, and the live feed keeps loading readings): they take marks first.

    It stops after the last test that uses it (``pytest_runtest_teardown`` below), not at
    the end of the run: every trust's MQTT subscriber listens on the same topics of the
    shared broker, so this trust's live feed must not keep running beside later modules'
    trusts (``tests/test_up.py`` restarts one and counts its rows).
    """
    from tests._trust import Trust

    trust = Trust(tmp_path_factory.mktemp("demo-trust"))

    def stop() -> None:
        if trust.process.poll() is None:
            trust.stop()

    request.config.stash.setdefault(STOPS, {})["demo_trust"] = stop
    try:
        yield trust
    finally:
        stop()


@pytest.fixture(scope="session")
def trust_parts(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator:
    """A demo trust made by ``datatrust up``, then run part by part (``datatrust serve``).

    Shared by tests/faults and tests/federation/test_node_outage.py, so a test can kill,
    pause, replace or reconfigure one part (a node, the identity server) while the others
    keep running; each test puts back what it changed and compares with a full answer it
    takes first. The gateway waits ``GATEWAY_TIMEOUT_SECONDS`` (test_node_outage.py) for a
    node and allows ``GATEWAY_TOKEN_LEEWAY_SECONDS`` of clock leeway on token times.
    ``parts.token`` is taken when it starts: a module running much later takes a new one.
    """
    import json
    import signal

    from tests._trust import Trust, token
    from tests.federation.test_node_outage import PARTS, Parts, wait_until_ready

    made = Trust(tmp_path_factory.mktemp("trust-parts"))
    run = dict(made.run)
    assert made.stop() == 0
    parts = Parts(made.data_dir, run)
    kind, config = parts.configs["gateway"]
    small_leeway = config.with_name("gateway-parts.toml")
    small_leeway.write_text(
        f"token_leeway_seconds = {GATEWAY_TOKEN_LEEWAY_SECONDS}\n"
        + config.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    parts.configs["gateway"] = (kind, small_leeway)

    def stop() -> None:
        for process in parts.processes.values():  # all at once: each takes a while to stop
            process.send_signal(signal.SIGCONT)
            process.terminate()
        parts.stop_all()

    request.config.stash.setdefault(STOPS, {})["trust_parts"] = stop
    try:
        for part in PARTS:
            parts.start(part)
        # `up` removed run.json when it stopped; the tools (`datatrust token`) read it.
        (made.data_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
        wait_until_ready(run["gateway"].replace("/graphql", "/readyz"))
        parts.made = made
        parts.token = token(made, "service-planning")
        yield parts
    finally:
        stop()


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    last = {}
    for item in items:
        for name in SESSION_TRUSTS:
            if name in getattr(item, "fixturenames", ()):
                last[name] = item.nodeid
    config.stash[LAST_USERS] = last


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    """Stop a session trust once its last user and that user's fixtures are torn down."""
    yield
    stops = item.config.stash.get(STOPS, {})
    for name, nodeid in item.config.stash.get(LAST_USERS, {}).items():
        if nodeid == item.nodeid and name in stops:
            stops.pop(name)()
