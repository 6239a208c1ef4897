"""Fixtures shared by every test folder: a throwaway PostgreSQL database and store URLs."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

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
