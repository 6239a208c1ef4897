"""The Things Stack (v3) uplink messages, as its webhooks and MQTT ``.../up`` topic send them.

Input is one message, NDJSON (one ``up`` message per line) or a JSON array of messages.
Measurements come from ``uplink_message.decoded_payload`` when the network server decoded
the payload, else from ``frm_payload`` (base64) through the codec registered for the
device's model. The model is ``uplink_message.version_ids.model_id``, or the caller's
``models`` mapping (our inventory), which wins when both are given.

Real traffic differs from the documentation: ``f_cnt`` is left out when it is 0 (proto3
JSON omits zero values), ``rssi``/``snr`` may arrive as strings, and timestamps come in
the styles :func:`parse_timestamp` accepts.

Most messages take a fast path (``_common_uplink``) and the rest the general one
(``_build``); ``_lorawan`` says how the two agree.
"""

from __future__ import annotations

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

__all__ = ["read_things_stack_uplinks", "things_stack_uplink"]

_WHAT = "The Things Stack up message"


def read_things_stack_uplinks(
    text: str | bytes,
    source: str,
    *,
    models: Mapping[str, str] | None = None,
    codecs: Mapping[str, Codec] = CODECS,
    now: datetime | None = None,
) -> Iterator[Output]:
    """A ``SensorUplink`` or a located ``RecordError`` for each message, in source order."""
    messages = json_messages(read_text(text, source), source, exact=False)
    return uplinks(messages, models or {}, codecs, now, _common_uplink, _general)


def things_stack_uplink(
    location: str,
    message: Any,
    models: Mapping[str, str],
    codecs: Mapping[str, Codec],
    now: datetime | None,
) -> Output:
    """One parsed ``up`` message as a record or a located error (no ``raw=`` yet)."""
    return one_uplink(location, message, models, codecs, now, _common_uplink, _general)


def _common_uplink(
    message: Any,
    models: Mapping[str, str],
    codecs: Mapping[str, Codec],
    latest: datetime | None,
) -> SensorUplink:
    """The record ``_build`` would make of a message in the common shape, else ``Unusual``
    (or ``InvalidField``: the general path then says exactly what is wrong)."""
    if type(message) is not dict:
        raise Unusual
    ids, uplink = message.get("end_device_ids"), message.get("uplink_message")
    if type(ids) is not dict or type(uplink) is not dict:
        raise Unusual
    device_id = ids.get("device_id")
    if type(device_id) is not str:
        raise Unusual
    decoded = uplink.get("decoded_payload")
    if isinstance(decoded, dict) and decoded:
        values = measurements(decoded)
    else:  # errors come from the general path, so their paths are left out here
        version = uplink.get("version_ids")
        model = models.get(device_id) or (
            version.get("model_id") if isinstance(version, dict) else None
        )
        values = decode_payload(
            uplink.get("frm_payload"), model, codecs, payload_path="", model_path="", server=""
        )
    best, _index = plain_best_gateway(uplink.get("rx_metadata"))
    settings, gateway = uplink.get("settings"), best.get("gateway_ids")
    if type(settings) is not dict or type(gateway) is not dict:
        raise Unusual
    frame_counter = uplink.get("f_cnt", 0)
    received_at = common_timestamp(message.get("received_at"), latest)
    radio_time = settings.get("time") or best.get("time")
    device_time = common_timestamp(radio_time, latest) if radio_time else None
    if type(frame_counter) is not int or received_at is None or (radio_time and not device_time):
        raise Unusual
    return common_record(
        device_id=device_id,
        received_at=received_at,
        device_time=device_time,
        frame_counter=frame_counter,
        gateway_id=gateway.get("gateway_id"),
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
    up = object_at(message, "/", _WHAT)
    ids = object_at(up.get("end_device_ids"), "/end_device_ids", _WHAT)
    device_id = ids.get("device_id")
    if not isinstance(device_id, str) or not device_id:
        raise InvalidField(
            "/end_device_ids/device_id",
            device_id,
            "every uplink names its device",
            "send the whole The Things Stack up message",
        )
    uplink = object_at(up.get("uplink_message"), "/uplink_message", _WHAT)
    decoded = uplink.get("decoded_payload")
    if isinstance(decoded, dict) and decoded:
        values = measurements(decoded)
    else:
        version = uplink.get("version_ids")
        model = models.get(device_id) or (
            version.get("model_id") if isinstance(version, dict) else None
        )
        values = decode_payload(
            uplink.get("frm_payload"),
            model,
            codecs,
            payload_path="/uplink_message/frm_payload",
            model_path="/uplink_message/version_ids/model_id",
            server="The Things Stack",
        )
    best, index = best_gateway(uplink.get("rx_metadata"))
    settings = object_at(uplink.get("settings") or {}, "/uplink_message/settings", _WHAT)
    radio_time, radio_path = settings.get("time"), "/uplink_message/settings/time"
    if not radio_time:
        radio_time, radio_path = best.get("time"), f"/uplink_message/rx_metadata/{index}/time"
    gateway = object_at(best.get("gateway_ids") or {}, "/gateway_ids", _WHAT)
    return build(
        SensorUplink,
        location,
        device_id=device_id,
        received_at=parse_timestamp(up.get("received_at"), "/received_at", now=now),
        device_time=parse_timestamp(radio_time, radio_path, now=now) if radio_time else None,
        frame_counter=whole_number(uplink.get("f_cnt", 0), "/uplink_message/f_cnt"),
        gateway_id=gateway.get("gateway_id"),
        rssi=optional_number(best.get("rssi"), f"/uplink_message/rx_metadata/{index}/rssi"),
        snr=optional_number(best.get("snr"), f"/uplink_message/rx_metadata/{index}/snr"),
        measurements=values,
        units={name: MEASUREMENT_UNITS[name] for name in values},
    )


_general = general_uplink(_build)
