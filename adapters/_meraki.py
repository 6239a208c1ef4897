"""Cisco Meraki Scanning API v3 presence feeds: WiFi and Bluetooth (BLE) observations.

Meraki POSTs one JSON body per batch: ``{"version": "3.0", "secret": ..., "type": "WiFi" |
"BLE", "data": {"networkId": ..., "observations": [...]}}``. Each observation names the
client (``clientMac``) and its ``latestRecord`` (``time``, ``nearestApMac``,
``nearestApRssi``); WiFi observations add ``ssid``. Input is one body, a JSON array of
bodies, or NDJSON (one body per line, as a receiver logs them).

Real receivers see what the documentation does not show: ``nearestApRssi`` as a string
(``"-47"``), ``time`` as epoch seconds, ``type`` spelt ``"Bluetooth"``, MACs in upper case
or with dashes, ``ssid`` null or empty, ``nearestApMac`` missing (then the strongest AP in
the last location's ``rssiRecords`` is used), and v2 bodies (``seenTime``/``seenEpoch``,
``rssi``, ``data.apMac``). The ``secret`` is the webhook's job to check; it is never copied
into an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from datatrust.errors import RecordError

from ._common import Output, build, read_text, with_raw
from ._json import Message, json_messages, number, object_at, optional_number
from ._records import InvalidField, PresenceObservation
from ._time import parse_timestamp

__all__ = ["read_meraki_scanning"]

_KINDS = {"wifi": "wifi", "ble": "ble", "bluetooth": "ble"}
_WHAT = "Meraki Scanning API body"


def read_meraki_scanning(
    text: str | bytes, source: str, *, now: datetime | None = None
) -> Iterator[Output]:
    """A ``PresenceObservation`` or a located ``RecordError`` per observation, in order."""
    return _read(json_messages(read_text(text, source), source), now)


def _read(messages: Iterator[Message], now: datetime | None) -> Iterator[Output]:
    for location, raw, message in messages:
        if isinstance(message, RecordError):
            yield with_raw(message, raw)
            continue
        try:
            kind, data, observations = _envelope(message)
        except InvalidField as error:
            yield with_raw(
                RecordError(str(error), location=f"{location}#{error.field}", field=error.field),
                _without_secret(message, raw),
            )
            continue
        for index, observation in enumerate(observations):
            path = f"{location}#/data/observations/{index}"
            yield with_raw(
                _observation(path, kind, data, observation, now),
                json.dumps(observation, ensure_ascii=False),
            )


def _envelope(message: Any) -> tuple[str, dict[str, Any], list[Any]]:
    body = object_at(message, "/", _WHAT)
    kind = body.get("type")
    if not isinstance(kind, str) or kind.strip().lower() not in _KINDS:
        raise InvalidField(
            "/type", kind, "must be WiFi or BLE (Meraki Scanning API v3)", "send the whole body"
        )
    data = object_at(body.get("data"), "/data", _WHAT)
    observations = data.get("observations")
    if not isinstance(observations, list):
        raise InvalidField(
            "/data/observations", observations, "must be a JSON array", "send the whole body"
        )
    return _KINDS[kind.strip().lower()], data, observations


def _observation(
    location: str, kind: str, data: dict[str, Any], item: Any, now: datetime | None
) -> Output:
    try:
        observation = object_at(item, "/", "observation")
        latest = observation.get("latestRecord")
        if isinstance(latest, dict):
            when, when_path = latest.get("time"), "/latestRecord/time"
            ap = latest.get("nearestApMac") or _strongest_ap(observation.get("locations"))
            ap_path = "/latestRecord/nearestApMac"
            rssi = optional_number(latest.get("nearestApRssi"), "/latestRecord/nearestApRssi")
        elif "seenEpoch" in observation or "seenTime" in observation:  # Scanning API v2
            name = "seenEpoch" if observation.get("seenEpoch") is not None else "seenTime"
            when, when_path = observation.get(name), f"/{name}"
            ap, ap_path = data.get("apMac"), "/data/apMac"
            rssi = optional_number(observation.get("rssi"), "/rssi")
        else:
            raise InvalidField(
                "/latestRecord", None, "every v3 observation has a latestRecord", "send it whole"
            )
        if not ap:
            raise InvalidField(
                ap_path, ap, "the observation names no access point", "send nearestApMac"
            )
        ssid = observation.get("ssid") if kind == "wifi" else None
        network = data.get("networkId")
        return build(
            PresenceObservation,
            location,
            client_mac=observation.get("clientMac"),
            ap_mac=ap,
            seen_at=parse_timestamp(when, when_path, now=now),
            rssi=rssi,
            kind=kind,
            ssid=ssid.strip() if isinstance(ssid, str) and ssid.strip() else None,
            network_id=network if isinstance(network, str) and network else None,
        )
    except InvalidField as error:
        return RecordError(str(error), location=f"{location}{error.field}", field=error.field)


def _strongest_ap(locations: Any) -> str | None:
    """The AP that heard the client loudest in its last location, if the body has one."""
    if not isinstance(locations, list) or not locations or not isinstance(locations[-1], dict):
        return None
    records = [r for r in locations[-1].get("rssiRecords") or [] if isinstance(r, dict)]
    heard = []
    for record in records:
        try:
            heard.append((number(record.get("rssi"), "rssi"), record.get("apMac")))
        except InvalidField:
            continue
    return max(heard, key=lambda pair: pair[0])[1] if heard else None


def _without_secret(message: Any, raw: str) -> str:
    if isinstance(message, dict) and "secret" in message:
        return json.dumps({**message, "secret": "[SECRET]"}, ensure_ascii=False)
    return raw
