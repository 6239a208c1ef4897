"""ChirpStack v4 ``up`` events with the JSON marshaler.

They arrive on MQTT ``application/{id}/device/{devEui}/event/up`` or as the HTTP
integration's ``?event=up`` body.

The device is ``deviceInfo.devEui``, lower-cased (ChirpStack has no separate device ID).
Measurements come from ``object`` when the device profile's codec decoded the payload, else
from base64 ``data`` through our codec registry, chosen by the caller's ``models`` mapping
(devEui -> model, from the inventory) or else by ``deviceInfo.deviceProfileName``.

Times: ``received_at`` is the event's ``time``; ``device_time`` is the best gateway's
``gwTime`` (its GPS clock) when it has one, else that gateway's ``nsTime`` (when the network
server received the frame). Real events leave out ``fCnt`` when it is 0, ``object`` when no
codec ran, and ``rssi``/``snr``/``nsTime`` on some gateways; ChirpStack 4.6+ also dropped
``rxInfo[].time``.

Most events take a fast path (``_common_uplink``) and the rest the general one (``_build``);
``_lorawan`` says how the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from ._codecs import CODECS, MEASUREMENT_UNITS, Codec, measurements
from ._common import Output, Unusual, build, read_text
from ._json import json_messages, object_at, optional_number, whole_number
from ._lorawan import (
    best_gateway,
    common_record,
    decode_payload,
    general_uplink,
    one_uplink,
    plain_best_gateway,
    uplinks,
)
from ._records import InvalidField, SensorUplink
from ._time import common_timestamp, parse_timestamp

__all__ = ["chirpstack_uplink", "read_chirpstack_uplinks"]

_DEV_EUI = re.compile(r"^[0-9a-f]{16}$")
_WHAT = "ChirpStack up event"


def read_chirpstack_uplinks(
    text: str | bytes,
    source: str,
    *,
    models: Mapping[str, str] | None = None,
    codecs: Mapping[str, Codec] = CODECS,
    now: datetime | None = None,
) -> Iterator[Output]:
    """A ``SensorUplink`` or a located ``RecordError`` for each event, in source order."""
    messages = json_messages(read_text(text, source), source, exact=False)
    return uplinks(messages, models or {}, codecs, now, _common_uplink, _general)


def chirpstack_uplink(
    location: str,
    message: Any,
    models: Mapping[str, str],
    codecs: Mapping[str, Codec],
    now: datetime | None,
) -> Output:
    """One parsed ``up`` event as a record or a located error (no ``raw=`` yet)."""
    return one_uplink(location, message, models, codecs, now, _common_uplink, _general)


def _common_uplink(
    message: Any,
    models: Mapping[str, str],
    codecs: Mapping[str, Codec],
    latest: datetime | None,
) -> SensorUplink:
    """The record ``_build`` would make of an event in the common shape, else ``Unusual``
    (or ``InvalidField``: the general path then says exactly what is wrong)."""
    if type(message) is not dict:
        raise Unusual
    info = message.get("deviceInfo")
    if type(info) is not dict:
        raise Unusual
    raw_eui = info.get("devEui")
    if type(raw_eui) is not str:
        raise Unusual
    dev_eui = raw_eui.strip().lower()
    if not _DEV_EUI.match(dev_eui):
        raise Unusual
    decoded = message.get("object")
    if isinstance(decoded, dict) and decoded:
        values = measurements(decoded)
    else:  # errors come from the general path, so their paths are left out here
        model = models.get(dev_eui) or info.get("deviceProfileName")
        values = decode_payload(
            message.get("data"), model, codecs, payload_path="", model_path="", server=""
        )
    best, _index = plain_best_gateway(message.get("rxInfo"))
    frame_counter = message.get("fCnt", 0)
    received_at = common_timestamp(message.get("time") or best.get("nsTime"), latest)
    radio_time = best.get("gwTime") or best.get("nsTime")
    device_time = common_timestamp(radio_time, latest) if radio_time else None
    if type(frame_counter) is not int or received_at is None or (radio_time and not device_time):
        raise Unusual
    return common_record(
        device_id=dev_eui,
        received_at=received_at,
        device_time=device_time,
        frame_counter=frame_counter,
        gateway_id=best.get("gatewayId"),
        rssi=best.get("rssi"),
        snr=best.get("snr"),
        values=values,
    )


def _build(
    location: str,
    message: Any,
    models: Mapping[str, str],
    codecs: Mapping[str, Codec],
    now: datetime | None,
) -> Output:
    event = object_at(message, "/", _WHAT)
    info = object_at(event.get("deviceInfo"), "/deviceInfo", _WHAT)
    raw_eui = info.get("devEui")
    dev_eui = raw_eui.strip().lower() if isinstance(raw_eui, str) else raw_eui
    if not isinstance(dev_eui, str) or not _DEV_EUI.match(dev_eui):
        raise InvalidField(
            "/deviceInfo/devEui",
            raw_eui,
            "a DevEUI is 16 hex digits (LoRaWAN EUI-64)",
            "send the whole ChirpStack up event",
        )
    decoded = event.get("object")
    if isinstance(decoded, dict) and decoded:
        values = measurements(decoded)
    else:
        values = decode_payload(
            event.get("data"),
            models.get(dev_eui) or info.get("deviceProfileName"),
            codecs,
            payload_path="/data",
            model_path="/deviceInfo/deviceProfileName",
            server="ChirpStack",
        )
    best, index = best_gateway(event.get("rxInfo"))
    prefix = f"/rxInfo/{index}"
    received = event.get("time") or best.get("nsTime")
    radio_name = "gwTime" if best.get("gwTime") else "nsTime"
    radio = best.get(radio_name)
    return build(
        SensorUplink,
        location,
        device_id=dev_eui,
        received_at=parse_timestamp(received, "/time", now=now),
        device_time=parse_timestamp(radio, f"{prefix}/{radio_name}", now=now) if radio else None,
        frame_counter=whole_number(event.get("fCnt", 0), "/fCnt"),
        gateway_id=best.get("gatewayId"),
        rssi=optional_number(best.get("rssi"), f"{prefix}/rssi"),
        snr=optional_number(best.get("snr"), f"{prefix}/snr"),
        measurements=values,
        units={name: MEASUREMENT_UNITS[name] for name in values},
    )


_general = general_uplink(_build)
