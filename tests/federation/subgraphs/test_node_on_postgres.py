"""The same node code on PostgreSQL answers exactly as on SQLite."""

from __future__ import annotations

import shutil

import pytest

from datatrust import _prepare
from datatrust.demo import coventry_lsoas
from datatrust.node import create_node_app
from datatrust.settings import NodeSettings, load_settings
from tests.asgi_client import app_client
from tests.trust_identity import trust_identity

pytestmark = pytest.mark.postgres

QUERY = (
    "query($r: [_Any!]!) { _entities(representations: $r) "
    "{ ... on Area { code openCareEpisodes } } }"
)


def answer(data_dir, database_url, identity) -> list[dict]:
    sources = _prepare.write_demo_files(data_dir)
    _prepare.prepare_demo_node(data_dir, "social-care", database_url, sources["social-care"])
    settings = load_settings(
        NodeSettings,
        environ={},
        node_id="social-care",
        agency="ASC",
        data_dir=data_dir,
        database_url=database_url,
        issuers=identity.issuers,
    )
    codes = [lsoa.code for lsoa in coventry_lsoas()]
    with app_client(create_node_app(settings)) as client:
        response = client.post(
            "/graphql",
            json={
                "query": QUERY,
                "variables": {"r": [{"__typename": "Area", "code": c} for c in codes]},
            },
            headers=identity.headers("service-planning"),
        )
    assert response.status_code == 200, response.text
    return response.json()["data"]["_entities"]


def test_a_social_care_node_on_postgresql_answers_as_on_sqlite(tmp_path, postgres_url):
    with trust_identity(tmp_path / "identity") as identity:
        on_sqlite = answer(
            tmp_path / "a", f"sqlite:///{tmp_path / 'a' / 'social-care.db'}", identity
        )
        # The same trust keys, so disclosure control perturbs the same cells alike.
        shutil.copytree(tmp_path / "a" / "keys", tmp_path / "b" / "keys")
        on_postgres = answer(tmp_path / "b", postgres_url, identity)
    assert on_postgres == on_sqlite
    published = [area["openCareEpisodes"] for area in on_sqlite if area["openCareEpisodes"]]
    assert len(published) >= 3  # the featured areas; the rest are suppressed
