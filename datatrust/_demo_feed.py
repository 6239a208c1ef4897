"""A live demo feed: The Things Stack v3 uplinks for the demo sensors, published over MQTT.

``datatrust up`` runs this as a child process when the local broker answers, next to the
council node's MQTT subscriber, so the demo shows data arriving the way a city's LoRaWAN
network sends it: every few seconds a few of the demo devices report, with QoS 1, on
``v3/{application}@{tenant}/devices/{device}/up``. The first messages go out one interval
after start, and SIGTERM stops it once its last publish is acknowledged.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import threading
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from datatrust.ingest import broker_address

__all__ = ["FEED_APPLICATION", "demo_uplink", "run_demo_feed"]

logger = logging.getLogger("datatrust.demo_feed")

FEED_APPLICATION = "coventry-air-and-footfall"
FEED_TENANT = "ttn"
PUBLISH_TIMEOUT_SECONDS = 10.0


def demo_uplink(
    device_id: str, kind: str, received: datetime, f_cnt: int, rng: random.Random
) -> dict[str, object]:
    """One up message as The Things Stack v3 publishes it, with a decoded payload."""
    if kind == "air-quality":
        pm2_5 = rng.randrange(4, 30)
        decoded: dict[str, float] = {
            "battery": 95,
            "temperature": round(rng.uniform(9, 16), 1),
            "humidity": rng.randrange(120, 180) / 2,
            "co2": rng.randrange(410, 480),
            "pm2_5": pm2_5,
            "pm10": pm2_5 + rng.randrange(3, 12),
        }
        model = "am308"
    else:
        people = rng.randrange(0, 40)
        decoded = {"battery": 90, "period_in": people, "period_out": rng.randrange(0, 40)}
        model = "vs350"
    stamp = received.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "end_device_ids": {
            "device_id": device_id,
            "application_ids": {"application_id": FEED_APPLICATION},
        },
        "received_at": stamp,
        "uplink_message": {
            "f_port": 85,
            "f_cnt": f_cnt,
            "decoded_payload": decoded,
            "rx_metadata": [
                {
                    "gateway_ids": {"gateway_id": "coventry-gw-01"},
                    "time": stamp,
                    "rssi": rng.randrange(-118, -70),
                    "snr": round(rng.uniform(-8, 10), 2),
                }
            ],
            "settings": {"frequency": "868100000", "time": stamp},
            "received_at": stamp,
            "version_ids": {"brand_id": "milesight-iot", "model_id": model},
        },
    }


def run_demo_feed(
    broker: str,
    inventory: Path,
    stop: threading.Event,
    *,
    interval_seconds: float = 5.0,
    devices_per_tick: int = 4,
) -> int:
    """Publish until ``stop`` is set; the number of messages the broker acknowledged."""
    host, port = broker_address(broker)
    with inventory.open(encoding="utf-8", newline="") as handle:
        sensors = [(row["device_id"], row["kind"]) for row in csv.DictReader(handle)]
    rng = random.Random()  # noqa: S311 - synthetic demo readings
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.connect_async(host, port, keepalive=30)
    client.loop_start()
    published = 0
    f_cnt = int(datetime.now(UTC).timestamp()) % 1_000_000
    try:
        while not stop.wait(interval_seconds):
            now = datetime.now(UTC)
            pending = []
            for device_id, kind in rng.sample(sensors, min(devices_per_tick, len(sensors))):
                f_cnt += 1
                message = demo_uplink(device_id, kind, now, f_cnt, rng)
                topic = f"v3/{FEED_APPLICATION}@{FEED_TENANT}/devices/{device_id}/up"
                pending.append(client.publish(topic, json.dumps(message), qos=1))
            for info in pending:
                try:
                    info.wait_for_publish(PUBLISH_TIMEOUT_SECONDS)
                except (RuntimeError, ValueError):
                    break  # not connected: paho reconnects with back-off and we go on
                published += int(info.is_published())
            logger.info("published %d uplink(s); %d in all", len(pending), published)
    finally:
        client.disconnect()
        client.loop_stop()
    return published
