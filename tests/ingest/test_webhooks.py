"""Webhooks on the council node: The Things Stack v3 and ChirpStack v4 pushing uplinks."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from datatrust._prepare import node_pseudonymiser
from datatrust.ingest import SECRET_HEADER, ingest_file, source_format, webhook_secret
from datatrust.node import create_node_app
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import QuarantinedRecord, create_store_engine, migrate
from tests.asgi_client import app_client
from tests.ingest.test_mqtt import INVENTORY, START, readings, uplink

UNAUTHORISED = {
    "error": {
        "code": "WEBHOOK_SECRET_INVALID",
        "message": (
            "missing or wrong X-Datatrust-Webhook-Secret header; set it on the webhook "
            "(The Things Stack: Additional headers; ChirpStack: HTTP integration headers) "
            "to the node's keys/<node>/webhook-secret"
        ),
    }
}


def settings_for(node: str, data_dir: Path, database_url: str | None = None) -> NodeSettings:
    return load_settings(
        NodeSettings,
        environ={},
        node_id=node,
        agency=node,
        data_dir=data_dir,
        database_url=database_url,
    )


@pytest.fixture
def council(tmp_path: Path, store_url: str):
    settings = settings_for("council", tmp_path, store_url)
    inventory = tmp_path / "sensor_inventory.csv"
    inventory.write_text(INVENTORY, encoding="utf-8")
    engine = create_store_engine(store_url)
    migrate(engine)
    ingest_file(
        engine,
        inventory,
        source_format("sensor-inventory", node_id="council"),
        node_pseudonymiser(tmp_path, "council"),
    )
    engine.dispose()
    with app_client(create_node_app(settings)) as client:
        yield settings, client


def secret_of(settings: NodeSettings) -> dict[str, str]:
    return {SECRET_HEADER: webhook_secret(settings.data_dir / "keys" / "council")}


def quarantined(settings: NodeSettings) -> list[tuple[str, str, str]]:
    engine = create_store_engine(settings.effective_database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(QuarantinedRecord.source, QuarantinedRecord.location, QuarantinedRecord.format)
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_the_secret_is_made_at_first_run_readable_by_the_owner_only(council):
    settings, _ = council
    path = settings.data_dir / "keys" / "council" / "webhook-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(webhook_secret(path.parent)) == 64


def test_a_things_stack_uplink_with_the_right_secret_loads_and_a_replay_adds_nothing(council):
    settings, client = council
    body = json.dumps(uplink("pc-live-01", 1, 7)).encode()
    first = client.post("/ingest/ttn", content=body, headers=secret_of(settings))
    second = client.post("/ingest/ttn", content=body, headers=secret_of(settings))
    assert first.status_code == 200
    assert first.json() == {
        "status": "loaded",
        "request": first.json()["request"],
        "records_loaded": 1,
        "records_quarantined": 0,
        "already_quarantined": 0,
    }
    assert second.json() == first.json()
    at = START + timedelta(seconds=1)
    assert readings(settings) == [
        ("pc-live-01", at, "people_in", 7.0),
        ("pc-live-01", at, "people_out", 1.0),
    ]


@pytest.mark.parametrize(
    "headers",
    [{}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: ""}],
    ids=["missing", "wrong", "empty"],
)
@pytest.mark.parametrize("path", ["/ingest/ttn", "/ingest/chirpstack?event=up"])
def test_a_missing_or_wrong_secret_is_refused_with_401_and_nothing_is_read(council, headers, path):
    settings, client = council
    response = client.post(path, content=b"{not json", headers=headers)
    assert response.status_code == 401
    assert response.json() == UNAUTHORISED
    assert quarantined(settings) == []
    assert readings(settings) == []


@pytest.mark.parametrize(
    ("path", "format_name"),
    [
        ("/ingest/ttn", "things-stack-uplinks"),
        ("/ingest/chirpstack?event=up", "chirpstack-uplinks"),
    ],
)
def test_a_malformed_body_is_quarantined_once_and_answered_202(council, path, format_name):
    settings, client = council
    body = b'{"end_device_ids": {"device_id": "pc-live-01"'
    first = client.post(path, content=body, headers=secret_of(settings))
    again = client.post(path, content=body, headers=secret_of(settings))
    assert first.status_code == 202
    assert first.json() == {
        "status": "loaded",
        "request": first.json()["request"],
        "records_loaded": 0,
        "records_quarantined": 1,
        "already_quarantined": 0,
    }
    assert again.status_code == 202
    assert again.json()["already_quarantined"] == 1
    route = path.split("?")[0] + ("?event=up" if "?" in path else "")
    assert quarantined(settings) == [
        (route, f"POST {route} request {first.json()['request']}", format_name)
    ]


def test_chirpstack_events_other_than_up_are_acknowledged_and_ignored(council):
    settings, client = council
    response = client.post(
        "/ingest/chirpstack?event=join", content=b"{}", headers=secret_of(settings)
    )
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "event": "join"}


def test_only_the_council_node_mounts_the_webhooks(tmp_path):
    with app_client(create_node_app(settings_for("health", tmp_path))) as client:
        response = client.post("/ingest/ttn", content=b"{}")
    assert response.status_code == 404
