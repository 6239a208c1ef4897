"""What the two LoRaWAN network servers share: payload decoding through the codec registry."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from ._codecs import Codec, measurements
from ._records import InvalidField

__all__ = ["best_gateway", "decode_payload"]


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
