"""MQTT into a council store through the real Mosquitto at 127.0.0.1:1883: QoS 1, nothing lost.

Each test publishes under its own application id (``v3/test-<hex>@ttn/...``) and uses its
own client ids, so parallel runs never see each other's messages.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import select

from datatrust._prepare import node_pseudonymiser
from datatrust.ingest import MqttIngest, ingest_file, source_format
from datatrust.node import create_node_app
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import QuarantinedRecord, Reading, create_store_engine, migrate
from tests.asgi_client import app_client
from tests.conftest import _unavailable
from tests.trust_identity import trust_identity

BROKER = "mqtt://127.0.0.1:1883"
LSOA = "E01009522"
INVENTORY = (
    "device_id,model,kind,lsoa_code,latitude,longitude\n"
    f"pc-live-01,vs350,people-counter,{LSOA},52.42450,-1.53190\n"
    f"pc-live-02,vs350,people-counter,{LSOA},52.42460,-1.53180\n"
)
DEVICES = ("pc-live-01", "pc-live-02")
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


@pytest.fixture(scope="module")
def broker() -> str:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=2).close()
    except OSError as error:
        _unavailable(f"the MQTT broker at 127.0.0.1:1883 is unreachable: {error}")
    return BROKER


@pytest.fixture
def application() -> str:
    return f"test-{secrets.token_hex(4)}"  # 12 hex digits would be redacted as a MAC


@pytest.fixture
def council(tmp_path: Path, broker: str) -> NodeSettings:
    inventory = tmp_path / "sensor_inventory.csv"
    inventory.write_text(INVENTORY, encoding="utf-8")
    settings = load_settings(
        NodeSettings, environ={}, node_id="council", agency="council", data_dir=tmp_path
    )
    engine = create_store_engine(settings.effective_database_url)
    migrate(engine)
    ingest_file(
        engine,
        inventory,
        source_format("sensor-inventory", node_id="council"),
        node_pseudonymiser(tmp_path, "council"),
    )
    engine.dispose()
    return settings


def uplink(device: str, number: int, people_in: int) -> dict:
    stamp = (START + timedelta(seconds=number)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "end_device_ids": {"device_id": device, "application_ids": {"application_id": "t"}},
        "received_at": stamp,
        "uplink_message": {
            "f_port": 85,
            "f_cnt": number,
            "decoded_payload": {"period_in": people_in, "period_out": 1},
            "rx_metadata": [
                {"gateway_ids": {"gateway_id": "gw-1"}, "time": stamp, "rssi": -90, "snr": 7.5}
            ],
            "received_at": stamp,
            "version_ids": {"brand_id": "milesight-iot", "model_id": "vs350"},
        },
    }


def topic_of(application: str, device: str) -> str:
    return f"v3/{application}@ttn/devices/{device}/up"


def publish(messages: list[tuple[str, bytes]], *, pause: float = 0.0) -> None:
    """Publish with QoS 1 and wait until the broker acknowledged every message."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
            if pause:
                time.sleep(pause)
    finally:
        client.disconnect()
        client.loop_stop()


def uplinks(application: str, numbers: range) -> list[tuple[str, bytes]]:
    return [
        (topic_of(application, DEVICES[n % 2]), json.dumps(uplink(DEVICES[n % 2], n, n)).encode())
        for n in numbers
    ]


def readings(settings: NodeSettings) -> list[tuple[str, datetime, str, float]]:
    engine = create_store_engine(settings.effective_database_url)
    try:
        with engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.execute(
                    select(
                        Reading.device_id, Reading.received_at, Reading.quantity, Reading.value
                    ).order_by(Reading.received_at, Reading.quantity)
                )
            ]
    finally:
        engine.dispose()


def expected_readings(numbers: range) -> list[tuple[str, datetime, str, float]]:
    rows = []
    for n in numbers:
        at = START + timedelta(seconds=n)
        rows += [
            (DEVICES[n % 2], at, "people_in", float(n)),
            (DEVICES[n % 2], at, "people_out", 1.0),
        ]
    return rows


def wait_for(condition, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Subscriber:
    """An in-process MqttIngest on its own thread."""

    def __init__(self, settings: NodeSettings, application: str, client_id: str) -> None:
        self.engine = create_store_engine(settings.effective_database_url)
        self.ingest = MqttIngest(
            engine=self.engine,
            pseudonymiser=node_pseudonymiser(settings.data_dir, "council"),
            broker=BROKER,
            topics=(f"v3/{application}@ttn/devices/+/up",),
            client_id=client_id,
            session_expiry_seconds=120,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.ingest.run, args=(self.stop,))
        self.thread.start()
        if not self.ingest.subscribed.wait(10):
            self.close()
            raise AssertionError("the subscriber did not subscribe within 10 s")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.engine.dispose()


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    with trust_identity(tmp_path_factory.mktemp("identity")) as running:
        yield running


def footfall(settings: NodeSettings, identity) -> int | None:
    settings = settings.model_copy(update={"issuers": identity.issuers})
    query = (
        '{ _entities(representations: [{__typename: "Area", code: "%s"}]) '
        "{ ... on Area { footfall } } }"
    )
    with app_client(create_node_app(settings)) as client:
        response = client.post(
            "/graphql", json={"query": query % LSOA}, headers=identity.headers("service-planning")
        )
    assert response.status_code == 200, response.text
    return response.json()["data"]["_entities"][0]["footfall"]


def test_uplinks_published_with_qos_1_become_rows_and_raise_footfall(
    council, application, identity
):
    before = footfall(council, identity)
    subscriber = Subscriber(council, application, f"test-{application}")
    try:
        publish(uplinks(application, range(1, 11)))
        wait_for(lambda: len(readings(council)) == 20, what="20 readings")
    finally:
        subscriber.close()
    assert readings(council) == expected_readings(range(1, 11))
    assert subscriber.ingest.totals.messages == 10
    # 55 people came in, published under the agreement's disclosure control: cell-key
    # perturbation (at most 3 either way, keyed by the node's secret salt) and rounding, so
    # the figure is within 5 of 55 however the salt falls, and never the None of no data.
    assert before is None
    assert abs(footfall(council, identity) - sum(range(1, 11))) <= 5


def test_a_redelivered_message_duplicates_nothing(council, application, monkeypatch):
    client_id = f"test-{application}"
    first = Subscriber(council, application, client_id)
    # The first subscriber commits but never acknowledges, as if it died in between.
    monkeypatch.setattr(first.ingest, "_acknowledge", lambda client, batch: None)
    try:
        publish(uplinks(application, range(1, 6)))
        wait_for(lambda: first.ingest.totals.messages == 5, what="5 messages committed")
    finally:
        first.close()
    loaded = readings(council)
    assert loaded == expected_readings(range(1, 6))

    second = Subscriber(council, application, client_id)
    try:
        wait_for(lambda: second.ingest.totals.messages == 5, what="5 redeliveries")
    finally:
        second.close()
    assert readings(council) == loaded


def test_a_message_that_does_not_parse_is_quarantined_once_with_its_topic_and_id(
    council, application
):
    topic = topic_of(application, DEVICES[0])
    subscriber = Subscriber(council, application, f"test-{application}")
    try:
        publish([(topic, b'{"end_device_ids": {"device_id": '), *uplinks(application, range(1, 3))])
        wait_for(lambda: subscriber.ingest.totals.messages == 3, what="3 messages")
        publish([(topic, b'{"end_device_ids": {"device_id": ')])  # the same message again
        wait_for(lambda: subscriber.ingest.totals.messages == 4, what="the repeat")
    finally:
        subscriber.close()
    assert readings(council) == expected_readings(range(1, 3))
    engine = create_store_engine(council.effective_database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(QuarantinedRecord.source, QuarantinedRecord.location, QuarantinedRecord.raw)
        ).all()
    engine.dispose()
    assert len(rows) == 1
    source, location, raw = rows[0]
    assert source == BROKER
    assert location.startswith(f"{topic} message ")
    assert raw == '{"end_device_ids": {"device_id": '


def test_killing_the_subscriber_mid_stream_loses_nothing_published_with_qos_1(
    council, application, tmp_path
):
    command = [
        *(sys.executable, "-m", "datatrust", "ingest", "mqtt", "--node", "council"),
        *("--data-dir", str(council.data_dir), "--broker", BROKER),
        *("--topic", f"v3/{application}@ttn/devices/+/up", "--client-id", f"test-{application}"),
        *("--session-expiry", "120"),
    ]

    def start() -> subprocess.Popen:
        log = (tmp_path / "subscriber.log").open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return process

    def subscribed(count: int) -> bool:
        text = (tmp_path / "subscriber.log").read_text()
        return text.count("subscribed to 1 topic(s) with QoS 1") >= count

    process = start()
    try:
        wait_for(lambda: subscribed(1), what="the subscription")
        publish(uplinks(application, range(0, 1)))
        wait_for(lambda: len(readings(council)) == 2, what="the first message")
        streamer = threading.Thread(
            target=publish, args=(uplinks(application, range(1, 60)),), kwargs={"pause": 0.01}
        )
        streamer.start()
        wait_for(lambda: len(readings(council)) >= 20, what="part of the stream")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        streamer.join(30)
        seen_at_kill = len(readings(council))
        publish(uplinks(application, range(60, 80)))  # while the subscriber is down
        assert len(readings(council)) == seen_at_kill
        process = start()
        wait_for(lambda: len(readings(council)) == 160, what="all 80 messages")
        time.sleep(0.5)  # any redelivery would land now
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    assert seen_at_kill < 160
    assert readings(council) == expected_readings(range(0, 80))
    assert process.returncode == 0, (tmp_path / "subscriber.log").read_text()
    log = (tmp_path / "subscriber.log").read_text()
    assert "pc-live" not in log  # counts and ids, never payloads
    assert "period_in" not in log


def test_the_subscriber_logs_json_lines_as_served_processes_do(council, application, tmp_path):
    """``ingest mqtt`` runs as a service (Compose's council-mqtt): its log is JSON lines."""
    command = [
        *(sys.executable, "-m", "datatrust", "ingest", "mqtt", "--node", "council"),
        *("--data-dir", str(council.data_dir), "--broker", BROKER),
        *("--topic", f"v3/{application}@ttn/devices/+/up", "--client-id", f"log-{application}"),
    ]
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as sink:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        wait_for(lambda: "subscribed to 1 topic" in stderr.read_text(), what="the subscription")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    lines = [json.loads(line) for line in stderr.read_text().splitlines()]
    assert {line["logger"] for line in lines} >= {"datatrust.ingest.mqtt"}
    assert any(line["message"] == "subscribed to 1 topic(s) with QoS 1" for line in lines)
    assert all({"time", "level", "message"} <= set(line) for line in lines)


def test_a_broker_url_that_is_not_mqtt_is_refused_by_name(council):
    result = subprocess.run(
        [
            *(sys.executable, "-m", "datatrust", "ingest", "mqtt", "--node", "council"),
            *("--data-dir", str(council.data_dir), "--broker", "http://127.0.0.1:1883"),
            *("--topic", "v3/+/devices/+/up"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        "error: broker URL 'http://127.0.0.1:1883' is not of the form mqtt://HOST[:PORT], "
        "e.g. mqtt://127.0.0.1:1883"
    ) in " ".join(result.stderr.split())
