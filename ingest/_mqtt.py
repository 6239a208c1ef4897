"""MQTT subscriptions into a node's store: at-least-once, nothing lost, nothing doubled.

The subscriber holds a persistent MQTT 5 session (``clean_start`` off, a session expiry)
under a client id that is stable per node, subscribes with QoS 1 and acknowledges each
message by hand (paho's ``manual_ack``) only after the message's records and quarantined
errors are committed through :func:`~datatrust.ingest.load_items`. So:

* a crash before the commit leaves the message unacknowledged, and the broker delivers it
  again when the subscriber comes back (while it is down, the session queues new ones);
* a crash between commit and acknowledgement means a redelivery, which loading absorbs:
  rows are written on their natural keys and a message's quarantine entry is keyed by a
  content id (``ingest._messages``).

Messages are committed in batches (up to ``batch_messages``, or whatever arrived within
``batch_seconds``), then acknowledged together. On stop, the batch in hand is committed
and acknowledged; with ``drain_seconds`` the subscriber first keeps taking messages until
the broker has sent none for that long. Acknowledgements are only sent on the
connection the message came in on: after a reconnect the broker redelivers anything
unacknowledged, and an old packet id could by then name another message. paho's network
thread reconnects with exponential back-off. Logs carry counts and ids, never payloads.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import Engine

from datatrust.errors import RecordError, SettingsError
from datatrust.ingest._messages import fresh_errors, message_id, read_message, topic_format
from datatrust.ingest._pipeline import load_items
from datatrust.ingest._pseudonymise import Pseudonymiser

__all__ = ["MqttIngest", "MqttTotals", "broker_address", "mqtt_client_id"]

logger = logging.getLogger("datatrust.ingest.mqtt")

DEFAULT_PORT = 1883
KEEPALIVE_SECONDS = 30
IDLE_FLUSH_SECONDS = 0.01


def broker_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of an ``mqtt://host[:port]`` URL; anything else is refused."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise SettingsError(
            f"broker URL {url!r} is not of the form mqtt://HOST[:PORT], e.g. mqtt://127.0.0.1:1883"
        )
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as error:
        raise SettingsError(f"broker URL {url!r} has an invalid port: {error}") from error
    return parts.hostname, port


def mqtt_client_id(node_id: str, data_dir_key: str) -> str:
    """The stable client id of ``node_id``'s subscriber: its session survives restarts."""
    return f"datatrust-{node_id}-{data_dir_key}"[:64]


@dataclass
class MqttTotals:
    """What a subscriber has done so far (for progress lines and tests)."""

    messages: int = 0
    loaded: int = 0
    quarantined: int = 0
    batches: int = 0
    connections: int = 0


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int


@dataclass
class MqttIngest:
    """Subscribe to ``topics`` at ``broker`` and load every uplink into ``engine``'s store."""

    engine: Engine
    pseudonymiser: Pseudonymiser
    broker: str
    topics: tuple[str, ...]
    client_id: str
    session_expiry_seconds: int = 86_400
    batch_messages: int = 500
    batch_seconds: float = 0.2
    reconnect_max_seconds: int = 60
    drain_seconds: float = 0.0
    on_batch: Callable[[MqttTotals], None] = lambda totals: None
    totals: MqttTotals = field(default_factory=MqttTotals)
    _inbox: queue.Queue[_Message] = field(default_factory=queue.Queue)
    _connection: int = 0
    _stopping: bool = False
    subscribed: threading.Event = field(default_factory=threading.Event)

    def run(self, stop: threading.Event) -> MqttTotals:
        """Consume until ``stop`` is set; the batch in hand is committed and acknowledged."""
        host, port = broker_address(self.broker)
        if not self.topics:
            raise SettingsError("no topic to subscribe to; give at least one --topic")
        client = self._client()
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_seconds
        client.connect_async(
            host, port, KEEPALIVE_SECONDS, clean_start=False, properties=properties
        )
        client.loop_start()
        try:
            while not stop.is_set():
                self._take(client, self._collect(self.batch_seconds, stop))
            # Drain: what the broker is still sending is committed before we go.
            while self.drain_seconds and self._take(
                client, self._collect(self.drain_seconds, threading.Event())
            ):
                pass
        finally:
            self._stopping = True
            client.disconnect()
            client.loop_stop()
        return self.totals

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=self.reconnect_max_seconds)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            logger.warning("broker %s refused the connection: %s", self.broker, reason_code)
            return
        self._connection += 1
        self.totals.connections += 1
        logger.info(
            "connected to %s as %s (session present: %s); subscribing to %d topic(s)",
            self.broker,
            self.client_id,
            flags.session_present,
            len(self.topics),
        )
        client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self.topics])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            logger.error("broker %s refused a subscription: %s", self.broker, refused)
        else:
            logger.info("subscribed to %d topic(s) with QoS 1", len(reason_codes))
            self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.subscribed.clear()
        if self._stopping:
            logger.info("disconnected from %s", self.broker)
            return
        logger.warning(
            "disconnected from %s (%s); reconnecting with back-off up to %d s",
            self.broker,
            reason_code,
            self.reconnect_max_seconds,
        )

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(
            _Message(message.topic, message.payload, message.mid, message.qos, self._connection)
        )

    def _take(self, client: mqtt.Client, batch: list[_Message]) -> int:
        if batch:
            self._commit(batch)
            self._acknowledge(client, batch)
        return len(batch)

    def _collect(self, wait_seconds: float, stop: threading.Event) -> list[_Message]:
        """Up to ``batch_messages``; stops early when the inbox idles or time is up."""
        try:
            first = self._inbox.get(timeout=wait_seconds)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_seconds
        while len(batch) < self.batch_messages and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._inbox.get(timeout=min(remaining, IDLE_FLUSH_SECONDS)))
            except queue.Empty:
                break
        return batch

    def _commit(self, batch: list[_Message]) -> None:
        by_format: dict[str, list[object]] = {}
        seen: set[str] = set()
        for message in batch:
            identity = message_id(message.topic, message.payload)
            if identity in seen:
                continue  # a redelivery within the batch: loaded once, acknowledged twice
            seen.add(identity)
            format_name = topic_format(message.topic)
            location = f"{message.topic} message {identity}"
            if format_name is None:
                items: list[object] = [
                    RecordError(
                        "no reader for this topic; uplinks come on v3/{application}@{tenant}"
                        "/devices/{device}/up or application/{id}/device/{devEui}/event/up",
                        location=location,
                        raw=message.payload[:10_000].decode("utf-8", errors="replace"),
                    )
                ]
                format_name = "mqtt"
            else:
                items = read_message(format_name, message.payload, location, topic=message.topic)
            by_format.setdefault(format_name, []).extend(items)
        loaded = quarantined = 0
        for format_name, items in by_format.items():
            records = [item for item in items if not isinstance(item, RecordError)]
            errors = fresh_errors(
                self.engine, (item for item in items if isinstance(item, RecordError))
            )
            report = load_items(
                self.engine,
                records + errors,
                source=self.broker,
                format_name=format_name,
                pseudonymiser=self.pseudonymiser,
            )
            loaded += report.records_loaded
            quarantined += report.records_quarantined
        self.totals.messages += len(batch)
        self.totals.loaded += loaded
        self.totals.quarantined += quarantined
        self.totals.batches += 1
        logger.debug(
            "committed %d message(s): %d record(s) loaded, %d quarantined",
            len(batch),
            loaded,
            quarantined,
        )
        self.on_batch(self.totals)

    def _acknowledge(self, client: mqtt.Client, batch: list[_Message]) -> None:
        stale = 0
        for message in batch:
            if message.qos == 0:
                continue
            if message.connection != self._connection:
                stale += 1  # the broker redelivers it on the new connection
                continue
            client.ack(message.mid, message.qos)
        if stale:
            logger.info("%d message(s) came on an earlier connection; left to redelivery", stale)
