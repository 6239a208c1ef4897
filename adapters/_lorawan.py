"""What the two LoRaWAN network servers share: payload decoding through the codec registry,
choosing the best gateway, and the helpers of the readers' fast path.

Each reader has a fast path for the messages real network servers send nearly always (every
field of the documented type, one or a few gateways, RFC 3339 times) and a general path for
everything else. The fast path never decides anything on its own: it raises ``Unusual``
(``_common``) at the first thing it does not expect, and the reader hands the message to
the general path, which accepts it or says exactly what is wrong with it. So both paths
give the same record for the same message, and every error comes from the general path.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from datatrust.errors import RecordError

from ._codecs import MEASUREMENT_UNITS, Codec, measurements
from ._common import Output, Unusual, with_raw
from ._json import Message, exact_json
from ._records import InvalidField, SensorUplink
from ._time import FUTURE_SLACK

__all__ = [
    "best_gateway",
    "common_record",
    "decode_payload",
    "general_uplink",
    "one_uplink",
    "plain_best_gateway",
    "plain_float",
    "uplinks",
]

FastUplink = Callable[[Any, Mapping[str, str], Mapping[str, Codec], datetime | None], SensorUplink]
"""Reads a message of the common shape, or raises Unusual / InvalidField."""
GeneralUplink = Callable[
    [str, Any, Mapping[str, str], Mapping[str, Codec], datetime | None], Output
]
"""Reads any message: a record, or a located RecordError saying exactly what is wrong."""


def general_uplink(build: GeneralUplink) -> GeneralUplink:
    """The general path around a reader's ``build``: a broken rule becomes a located error."""

    def general(
        location: str,
        message: Any,
        models: Mapping[str, str],
        codecs: Mapping[str, Codec],
        now: datetime | None,
    ) -> Output:
        if isinstance(message, RecordError):
            return message
        try:
            return build(location, message, models, codecs, now)
        except InvalidField as error:
            return RecordError(str(error), location=f"{location}#{error.field}", field=error.field)

    return general


def common_record(
    *,
    device_id: str,
    received_at: datetime,
    device_time: datetime | None,
    frame_counter: int,
    gateway_id: Any,
    rssi: Any,
    snr: Any,
    values: Mapping[str, Any],
) -> SensorUplink:
    """The fast path's record: the values it has already checked, as plain floats."""
    return SensorUplink(
        device_id=device_id,
        received_at=received_at,
        device_time=device_time,
        frame_counter=frame_counter,
        gateway_id=gateway_id,
        rssi=None if rssi is None else plain_float(rssi),
        snr=None if snr is None else plain_float(snr),
        measurements={name: plain_float(value) for name, value in values.items()},
        units={name: MEASUREMENT_UNITS[name] for name in values},
    )


def uplinks(
    messages: Iterator[Message],
    models: Mapping[str, str],
    codecs: Mapping[str, Codec],
    now: datetime | None,
    fast: FastUplink,
    general: GeneralUplink,
) -> Iterator[Output]:
    """Each message through the fast path, or (on anything unusual) the general one.

    Both network servers' readers share this: the fast path handles the common shape
    cheaply and the general path, which produces every error, handles the rest, so the
    records and errors are the same whichever path read them.
    """
    latest = None if now is None else now + FUTURE_SLACK
    for location, raw, message in messages:
        try:
            yield fast(message, models, codecs, latest)
        except (Unusual, InvalidField):
            exact = exact_json(raw, message)
            yield with_raw(general(location, exact, models, codecs, now), raw)


def one_uplink(
    location: str,
    message: Any,
    models: Mapping[str, str],
    codecs: Mapping[str, Codec],
    now: datetime | None,
    fast: FastUplink,
    general: GeneralUplink,
) -> Output:
    """One already-parsed message as a record or a located error (no ``raw=`` yet)."""
    try:
        return fast(message, models, codecs, None if now is None else now + FUTURE_SLACK)
    except (Unusual, InvalidField):
        return general(location, message, models, codecs, now)


# Well inside the 64-bit integers that orjson decodes as integers (see ``_json``), so a float
# below it was a float in the message.
_PLAIN = 1e18


def decode_payload(
    raw: Any,
    model: Any,
    codecs: Mapping[str, Codec],
    *,
    payload_path: str,
    model_path: str,
    server: str,
) -> dict[str, float]:
    """The measurements in base64 ``raw``, decoded by the codec registered for ``model``."""
    key = model.strip().lower() if isinstance(model, str) else model
    if key not in codecs:
        raise InvalidField(
            model_path,
            model,
            f"no decoded payload and no codec for this model (codecs: {', '.join(sorted(codecs))})",
            "decode on the network server, or register the device's model in the inventory",
        )
    try:
        payload = base64.b64decode(raw, validate=True) if isinstance(raw, str) else None
    except (binascii.Error, ValueError):
        payload = None
    if not payload:
        raise InvalidField(
            payload_path,
            raw,
            "the payload must be non-empty base64",
            f"send the payload exactly as {server} encoded it",
        )
    try:
        return measurements(codecs[key](payload))
    except ValueError as error:
        raise InvalidField(
            payload_path,
            raw,
            f"the {key} codec cannot read it ({error})",
            "check the device model in the inventory",
        ) from None


def best_gateway(metadata: Any) -> tuple[dict[str, Any], int]:
    """The gateway that heard the frame best (highest RSSI) and its index, or ``({}, 0)``."""
    gateways = [
        (item, index)
        for index, item in enumerate(metadata if isinstance(metadata, list) else [])
        if isinstance(item, dict)
    ]
    if not gateways:
        return {}, 0
    return max(gateways, key=lambda pair: _rssi(pair[0].get("rssi")))


def _rssi(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("-inf")


def plain_float(value: Any) -> float:
    """A JSON number well inside 64 bits as a float, else ``Unusual`` (also for NaN)."""
    kind = type(value)
    if kind is float and -_PLAIN < value < _PLAIN:
        return value
    if kind is int and -_PLAIN < value < _PLAIN:
        return float(value)
    raise Unusual


def plain_best_gateway(metadata: Any) -> tuple[dict[str, Any], int]:
    """:func:`best_gateway` for a non-empty list of gateway objects with plain RSSIs."""
    if type(metadata) is not list or not metadata:
        raise Unusual
    best: dict[str, Any] = {}
    index = 0
    top = -math.inf
    for at, gateway in enumerate(metadata):
        if type(gateway) is not dict:
            raise Unusual
        rssi = gateway.get("rssi")
        level = -math.inf if rssi is None else plain_float(rssi)
        if not at or level > top:  # the first of equals, as max() keeps
            best, index, top = gateway, at, level
    return best, index
