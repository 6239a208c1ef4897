"""The MQTT broker restarted during a live feed: every QoS 1 uplink stored exactly once.

A private Mosquitto (its own port, persistence in a temporary directory, so the
subscriber's persistent session and its queued messages survive a restart) carries a
stream of QoS 1 uplinks from a publisher that reconnects by itself to the council's
subscriber (``MqttIngest``, the loop ``datatrust ingest mqtt`` runs). The broker is
restarted midway; afterwards the store holds exactly one reading per published value:
none lost, none duplicated, nothing quarantined.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from datatrust._ports import free_port
from datatrust._prepare import node_pseudonymiser
from datatrust.ingest import MqttIngest, ingest_file, source_format
from datatrust.settings import NodeSettings, load_settings
from datatrust.store import create_store_engine, migrate
from tests.conftest import _unavailable
from tests.faults._node import wait_until
from tests.ingest.test_mqtt import INVENTORY, expected_readings, readings, uplinks

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
UPLINKS = 60
RESTART_AFTER_READINGS = 30  # about a quarter of the stream is stored before the restart


class PrivateBroker:
    """``mosquitto -c <conf>`` on a free port; ``restart`` is a clean stop and a start."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        store = root / "mosquitto"
        store.mkdir()
        self.conf = root / "mosquitto.conf"
        self.log = root / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {store}/\n"
            "log_dest stderr\nuser root\n",
            encoding="utf-8",
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:  # (as root it warns that it runs as root)
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_until(self._listening, 10, f"mosquitto on port {self.port}")

    def _listening(self) -> bool:
        import socket

        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: mosquitto saves its sessions and exits
            self.process.wait(10)
            self.process = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    if not Path(MOSQUITTO).exists():
        _unavailable(f"no mosquitto binary at {MOSQUITTO} to run a private broker")
    running = PrivateBroker(tmp_path)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def council(tmp_path: Path) -> NodeSettings:
    """A migrated council store that knows the two live devices."""
    settings = load_settings(
        NodeSettings, environ={}, node_id="council", agency="council", data_dir=tmp_path / "node"
    )
    inventory = tmp_path / "sensor_inventory.csv"
    inventory.write_text(INVENTORY, encoding="utf-8")
    engine = create_store_engine(settings.effective_database_url)
    migrate(engine)
    ingest_file(
        engine,
        inventory,
        source_format("sensor-inventory", node_id="council"),
        node_pseudonymiser(settings.data_dir, "council"),
    )
    engine.dispose()
    return settings


class ReconnectingPublisher:
    """A QoS 1 publisher with a persistent session: paho queues while it is disconnected,
    reconnects by itself and sends again whatever the broker had not acknowledged."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"faults-publisher-{secrets.token_hex(4)}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 120
        self.client.connect("127.0.0.1", port, clean_start=False, properties=properties)
        self.acknowledged: set[int] = set()
        self.client.on_publish = lambda client, data, mid, code, props: self.acknowledged.add(mid)
        self.client.loop_start()
        self.sent: list[int] = []

    def stream(self, messages: list[tuple[str, bytes]], pause: float) -> None:
        for topic, payload in messages:
            self.sent.append(self.client.publish(topic, payload, qos=1).mid)
            time.sleep(pause)

    def all_acknowledged(self) -> bool:
        return self.acknowledged.issuperset(self.sent)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_broker_restart_mid_feed_loses_and_duplicates_no_qos_1_uplink(broker, council):
    application = f"faults-{secrets.token_hex(4)}"
    engine = create_store_engine(council.effective_database_url)
    subscriber = MqttIngest(
        engine=engine,
        pseudonymiser=node_pseudonymiser(council.data_dir, "council"),
        broker=broker.url,
        topics=(f"v3/{application}@ttn/devices/+/up",),
        client_id=f"faults-{application}",
        session_expiry_seconds=600,
        reconnect_max_seconds=2,
    )
    stop = threading.Event()
    consuming = threading.Thread(target=subscriber.run, args=(stop,))
    consuming.start()
    publisher = None
    try:
        assert subscriber.subscribed.wait(10), "the subscriber did not subscribe"
        publisher = ReconnectingPublisher(broker.port)
        streaming = threading.Thread(
            target=publisher.stream, args=(uplinks(application, range(UPLINKS)), 0.03)
        )
        streaming.start()
        wait_until(lambda: len(readings(council)) >= RESTART_AFTER_READINGS, 30, "part of it")
        broker.stop()
        stored_at_restart = len(readings(council))
        broker.start()
        streaming.join(30)
        wait_until(publisher.all_acknowledged, 30, "every uplink acknowledged by the broker")
        wait_until(lambda: len(readings(council)) >= 2 * UPLINKS, 30, "every uplink stored")
        time.sleep(0.5)  # a redelivery after the restart would land now
    finally:
        if publisher is not None:
            publisher.close()
        stop.set()
        consuming.join(15)
        engine.dispose()
    assert stored_at_restart < 2 * UPLINKS  # the restart really fell mid-feed
    assert subscriber.totals.connections >= 2  # and the subscriber really reconnected
    stored = readings(council)
    assert len(stored) == len(set(stored)) == 2 * UPLINKS
    assert stored == expected_readings(range(UPLINKS))
