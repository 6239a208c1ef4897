"""A synthetic Cisco Meraki Scanning API v3 feed over the council's access points.

Written as NDJSON, one POST body per line (as a receiver logs them), WiFi and BLE bodies
alternating, each with up to 50 observations. Client MACs are locally administered.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

__all__ = ["meraki_feed"]

NETWORK_ID = "L_643451796760561234"
_PER_BODY = 50


def meraki_feed(
    rng: random.Random, ap_macs: list[str], start: datetime, days: int, count: int = 2_000
) -> str:
    """``count`` observations spread over ``days`` from ``start``, in time order."""
    aps = [mac.replace("-", ":").lower() for mac in ap_macs]
    clients = [_mac(rng) for _ in range(count // 4)]
    sightings = sorted(
        (
            start + timedelta(seconds=rng.randrange(days * 86_400)),
            rng.choice(clients),
            rng.choice(aps),
            rng.randrange(-90, -35),
            "WiFi" if rng.random() < 0.7 else "BLE",
        )
        for _ in range(count)
    )
    lines = []
    for kind in ("WiFi", "BLE"):
        ours = [s for s in sightings if s[4] == kind]
        for offset in range(0, len(ours), _PER_BODY):
            observations = []
            for seen, client, ap, rssi, _kind in ours[offset : offset + _PER_BODY]:
                observation: dict[str, object] = {
                    "clientMac": client,
                    "latestRecord": {
                        "time": f"{seen:%Y-%m-%dT%H:%M:%S}Z",
                        "nearestApMac": ap,
                        "nearestApRssi": rssi,
                    },
                    "locations": [],
                }
                if kind == "WiFi":
                    observation.update(
                        {"ipv4": None, "ipv6": None, "ssid": "CoventryFreeWiFi", "os": None}
                    )
                observations.append(observation)
            body = {
                "version": "3.0",
                "secret": "demo-secret",
                "type": kind,
                "data": {"networkId": NETWORK_ID, "observations": observations},
            }
            lines.append(json.dumps(body))
    return "\n".join(lines) + "\n"


def _mac(rng: random.Random) -> str:
    octets = [0x02 | (rng.randrange(256) & 0xFC)] + [rng.randrange(256) for _ in range(5)]
    return ":".join(f"{octet:02x}" for octet in octets)
