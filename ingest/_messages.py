"""One network message (an MQTT publish, a webhook body) into adapter output, never a crash.

Files are read whole by their adapter; live sources deliver one uplink per message, from
The Things Stack v3 or ChirpStack v4. This module picks the format, hands the message to
its adapter, and turns anything the adapter cannot read into a located ``RecordError``
carrying the raw message, so the caller only ever loads records and quarantines errors.

A message's id is the start of the SHA-256 of its topic (or route) and payload: the MQTT
packet id is reused by the broker and a webhook carries none, while this id is the same
on every redelivery, so a quarantined message is quarantined once (:func:`fresh_errors`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, select

from datatrust import adapters
from datatrust.errors import DatatrustError, RecordError
from datatrust.store import QuarantinedRecord

__all__ = [
    "CHIRPSTACK",
    "THINGS_STACK",
    "fresh_errors",
    "message_id",
    "read_message",
    "topic_format",
]

THINGS_STACK = "things-stack-uplinks"
CHIRPSTACK = "chirpstack-uplinks"
MAX_RAW_CHARS = 10_000


def message_id(route: str, payload: bytes) -> str:
    """A stable id of one message: the same bytes on the same topic get the same id."""
    return hashlib.sha256(route.encode() + b"\0" + payload).hexdigest()[:16]


def topic_format(topic: str) -> str | None:
    """The format of uplinks published on ``topic``, or None for a topic we do not read.

    The Things Stack v3: ``v3/{application}@{tenant}/devices/{device}/up``; ChirpStack v4:
    ``application/{application}/device/{devEui}/event/up``.
    """
    parts = topic.split("/")
    if len(parts) == 5 and parts[0] == "v3" and parts[2] == "devices" and parts[4] == "up":
        return THINGS_STACK
    if (
        len(parts) == 6
        and parts[0] == "application"
        and parts[2] == "device"
        and parts[4:] == ["event", "up"]
    ):
        return CHIRPSTACK
    return None


def read_message(
    format_name: str, payload: bytes, location: str, *, topic: str | None = None
) -> list[object]:
    """Records and located errors for one uplink message (each error keeps the raw message)."""
    raw = payload[:MAX_RAW_CHARS].decode("utf-8", errors="replace")
    try:
        items = list(_read(format_name, payload, location, topic))
    except DatatrustError as error:
        items = [RecordError(_reason(error), location=location)]
    return [_with_raw(item, raw) if isinstance(item, RecordError) else item for item in items]


def fresh_errors(engine: Engine, errors: Iterable[RecordError]) -> list[RecordError]:
    """The errors whose location is not in quarantine yet (a redelivery adds none)."""
    errors = list(errors)
    if not errors:
        return []
    # Quarantine stores locations redacted (a topic segment may look like a MAC address).
    stored = getattr(adapters, "redact", lambda text: text)
    with engine.connect() as connection:
        known = set(
            connection.execute(
                select(QuarantinedRecord.location).where(
                    QuarantinedRecord.location.in_({stored(e.location) for e in errors})
                )
            ).scalars()
        )
    fresh: list[RecordError] = []
    for error in errors:
        if stored(error.location) not in known:
            known.add(stored(error.location))
            fresh.append(error)
    return fresh


def _read(format_name: str, payload: bytes, location: str, topic: str | None) -> Iterable[object]:
    read_mqtt = getattr(adapters, "read_mqtt_uplink", None)
    if topic is not None and read_mqtt is not None:
        return read_mqtt(topic, payload, location)
    try:
        message = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise RecordError(
            f"message is not UTF-8 (byte {error.start}); send the uplink as UTF-8 JSON",
            location=location,
        ) from error
    except json.JSONDecodeError as error:
        raise RecordError(
            f"message is not JSON ({error.msg} at line {error.lineno} column {error.colno}); "
            "send one uplink message as a JSON object",
            location=location,
        ) from error
    if not isinstance(message, dict):
        raise RecordError(
            f"message is a JSON {type(message).__name__}, not an object; "
            "send one uplink message as a JSON object",
            location=location,
        )
    line = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    reader = _reader(format_name, location)
    return [_relocated(item, location) for item in reader(line, location)]


def _reader(format_name: str, location: str) -> Any:
    name = {
        THINGS_STACK: "read_things_stack_uplinks",
        CHIRPSTACK: "read_chirpstack_uplinks",
    }[format_name]
    reader = getattr(adapters, name, None)
    if reader is None:
        raise RecordError(
            f"no reader for {format_name} is installed yet; replay this record once it is",
            location=location,
        )
    return reader


def _relocated(item: object, location: str) -> object:
    """An NDJSON reader calls our one line ``<location>:1``; the message is the location."""
    if isinstance(item, RecordError) and item.location.startswith(f"{location}:1"):
        rest = item.location.removeprefix(f"{location}:1")
        details = {k: v for k, v in item.details.items() if k != "location"}
        return RecordError(item.reason, location=location + rest, **details)
    return item


def _with_raw(error: RecordError, raw: str) -> RecordError:
    if error.details.get("raw"):
        return error
    details = {k: v for k, v in error.details.items() if k != "location"}
    return RecordError(error.reason, location=error.location, **details, raw=raw)


def _reason(error: DatatrustError) -> str:
    return error.reason if isinstance(error, RecordError) else error.message
