"""The Things Stack (v3) uplink messages, as its webhooks and MQTT ``.../up`` topic send them.

Input is NDJSON (one ``up`` message per line) or one JSON array of messages. Measurements
come from ``uplink_message.decoded_payload`` when the network server decoded the payload,
else from ``frm_payload`` (base64) through the codec registered for the device's model.
The model is ``uplink_message.version_ids.model_id``, or the caller's ``models`` mapping
(our inventory), which wins when both are given.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from typing import Any

from datatrust.errors import RecordError, SourceError

from ._codecs import CODECS, MEASUREMENT_UNITS, Codec, measurements
from ._common import Output, build, parse_rfc3339, read_text
from ._records import InvalidField, SensorUplink

__all__ = ["read_things_stack_uplinks"]


def read_things_stack_uplinks(
    text: str | bytes,
    source: str,
    *,
    models: Mapping[str, str] | None = None,
    codecs: Mapping[str, Codec] = CODECS,
) -> Iterator[Output]:
    """A ``SensorUplink`` or a located ``RecordError`` for each message, in source order."""
    body = read_text(text, source)
    if body.lstrip().startswith("["):
        try:
            messages = json.loads(body)
        except json.JSONDecodeError as error:
            raise SourceError(
                f"{source}:{error.lineno}: not a JSON array ({error.msg}); "
                "send NDJSON or one valid JSON array",
                location=source,
            ) from error
        items = ((f"{source}#/{index}", message) for index, message in enumerate(messages))
    else:
        items = _ndjson(body, source)
    return (_uplink(location, message, models or {}, codecs) for location, message in items)


def _ndjson(body: str, source: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        location = f"{source}:{number}"
        try:
            yield location, json.loads(line)
        except json.JSONDecodeError as error:
            yield (
                location,
                RecordError(
                    f"line is not JSON ({error.msg} at column {error.colno}); "
                    "each line must be one uplink message",
                    location=location,
                ),
            )


def _uplink(
    location: str, message: Any, models: Mapping[str, str], codecs: Mapping[str, Codec]
) -> Output:
    if isinstance(message, RecordError):
        return message
    try:
        return _build(location, message, models, codecs)
    except InvalidField as error:
        return RecordError(str(error), location=f"{location}#{error.field}", field=error.field)


def _build(
    location: str, message: Any, models: Mapping[str, str], codecs: Mapping[str, Codec]
) -> Output:
    up = _object(message, "/")
    ids = _object(up.get("end_device_ids"), "/end_device_ids")
    device_id = ids.get("device_id")
    if not isinstance(device_id, str) or not device_id:
        raise InvalidField(
            "/end_device_ids/device_id",
            device_id,
            "every uplink names its device",
            "send the whole The Things Stack up message",
        )
    uplink = _object(up.get("uplink_message"), "/uplink_message")
    decoded = uplink.get("decoded_payload")
    if isinstance(decoded, dict) and decoded:
        values = measurements(decoded)
    else:
        values = measurements(_decode(device_id, uplink, models, codecs))
    best = _best_gateway(uplink.get("rx_metadata"))
    radio_time = _object(uplink.get("settings") or {}, "/uplink_message/settings").get("time")
    radio_time = radio_time or best.get("time")
    return build(
        SensorUplink,
        location,
        device_id=device_id,
        received_at=parse_rfc3339(up.get("received_at"), "/received_at"),
        device_time=(
            parse_rfc3339(radio_time, "/uplink_message/settings/time") if radio_time else None
        ),
        frame_counter=uplink.get("f_cnt", 0),
        gateway_id=_object(best.get("gateway_ids") or {}, "/gateway_ids").get("gateway_id"),
        rssi=best.get("rssi"),
        snr=best.get("snr"),
        measurements=values,
        units={name: MEASUREMENT_UNITS[name] for name in values},
    )


def _decode(
    device_id: str, uplink: dict[str, Any], models: Mapping[str, str], codecs: Mapping[str, Codec]
) -> dict[str, Any]:
    version = uplink.get("version_ids")
    model = models.get(device_id) or (
        version.get("model_id") if isinstance(version, dict) else None
    )
    if model not in codecs:
        raise InvalidField(
            "/uplink_message/version_ids/model_id",
            model,
            f"no decoded_payload and no codec for this model (codecs: {', '.join(sorted(codecs))})",
            "decode on the network server, or register the device's model in the inventory",
        )
    raw = uplink.get("frm_payload")
    try:
        payload = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
    except (binascii.Error, ValueError):
        payload = None
    if not payload:
        raise InvalidField(
            "/uplink_message/frm_payload",
            raw,
            "frm_payload must be non-empty base64",
            "send the payload exactly as The Things Stack encoded it",
        )
    try:
        return codecs[model](payload)
    except ValueError as error:
        raise InvalidField(
            "/uplink_message/frm_payload",
            raw,
            f"the {model} codec cannot read it ({error})",
            "check the device model in the inventory",
        ) from None


def _best_gateway(metadata: Any) -> dict[str, Any]:
    """The gateway that heard the frame best (highest RSSI), or an empty dict."""
    gateways = [item for item in metadata or [] if isinstance(item, dict)]
    if not gateways:
        return {}
    return max(gateways, key=lambda item: item.get("rssi", float("-inf")))


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidField(path, value, "must be a JSON object", "send the whole up message")
    return value
