"""One MQTT message from a LoRaWAN network server, routed by its topic to the right reader.

- The Things Stack: ``v3/{application id}@{tenant id}/devices/{device id}/up`` (``@tenant``
  is absent on single-tenant deployments);
- ChirpStack v4: ``application/{application id}/device/{devEui}/event/up``.

The device named in the topic must be the device in the payload: a mismatch means a
misconfigured bridge or a forged message, and the message is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime

from datatrust.errors import RecordError

from ._chirpstack import chirpstack_uplink
from ._codecs import CODECS, Codec
from ._common import Output, with_raw
from ._records import SensorUplink
from ._things_stack import things_stack_uplink

__all__ = ["read_mqtt_uplink"]

_TTS = re.compile(r"^v3/[^/]+/devices/([^/]+)/up$")
_CHIRPSTACK = re.compile(r"^application/[^/]+/device/([0-9A-Fa-f]{16})/event/up$")


def read_mqtt_uplink(
    topic: str,
    payload: bytes,
    source: str,
    *,
    models: Mapping[str, str] | None = None,
    codecs: Mapping[str, Codec] = CODECS,
    now: datetime | None = None,
) -> list[Output]:
    """The uplink in one MQTT message, or one ``RecordError`` saying why not."""
    raw = payload.decode("utf-8", errors="replace")
    return [with_raw(_read(topic, payload, source, models or {}, codecs, now), raw)]


def _read(
    topic: str,
    payload: bytes,
    source: str,
    models: Mapping[str, str],
    codecs: Mapping[str, Codec],
    now: datetime | None,
) -> Output:
    tts, chirpstack = _TTS.match(topic), _CHIRPSTACK.match(topic)
    if not (tts or chirpstack):
        return RecordError(
            f"topic {topic!r} is neither a The Things Stack uplink "
            "(v3/{app}@{tenant}/devices/{device}/up) nor a ChirpStack one "
            "(application/{id}/device/{devEui}/event/up); subscribe to uplink topics only",
            location=source,
            field="topic",
        )
    try:
        message = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as error:
        return RecordError(
            f"payload is not UTF-8 JSON (byte {error.start}); use the JSON marshaler "
            '(ChirpStack: [integration] marshaler="json")',
            location=source,
        )
    except json.JSONDecodeError as error:
        return RecordError(
            f"payload is not JSON ({error.msg} at column {error.colno}); "
            "each message must be one whole uplink",
            location=source,
        )
    if tts:
        record = things_stack_uplink(source, message, models, codecs, now)
        expected, field = tts.group(1), "/end_device_ids/device_id"
    else:
        record = chirpstack_uplink(source, message, models, codecs, now)
        expected, field = chirpstack.group(1).lower(), "/deviceInfo/devEui"  # type: ignore[union-attr]
    if isinstance(record, SensorUplink) and record.device_id != expected:
        return RecordError(
            f"{field} {record.device_id!r} is not the device {expected!r} the topic {topic!r} "
            "names; check the bridge that published it",
            location=f"{source}#{field}",
            field=field,
        )
    return record
