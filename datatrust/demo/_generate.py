"""Synthetic demo sources for three agency nodes, written in the real formats the adapters read.

Everything is drawn from one seeded ``random.Random`` over a fixed window (October 2026), so
the same seed always gives byte-identical files. Nothing here is real data about anyone:
NHS numbers use the never-issued 999 prefix, MAC addresses are locally administered.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from datatrust.adapters import (
    ACCESS_POINT_COLUMNS,
    CLD_COLUMNS,
    LOCAL_LSOA_COLUMN,
    LSOA_EXTENSION_URL,
    NHS_NUMBER_SYSTEM,
    SENSOR_COLUMNS,
)

from ._clinical import clinical_entries
from ._housing import hclic_return
from ._lsoa import Lsoa, coventry_lsoas
from ._presence import meraki_feed

__all__ = ["DemoSources", "write_demo_sources"]

DemoSources = dict[str, list[tuple[str, Path]]]
"""Per node id, the files written for it in load order, as ``(format_name, path)``."""

WINDOW_START = datetime(2026, 10, 1, tzinfo=UTC)
UPLINK_DAYS = 7
UPLINK_MINUTES = 15
GATEWAYS = ("coventry-gw-01", "coventry-gw-02", "coventry-gw-03")


def write_demo_sources(directory: Path, *, seed: int = 2026) -> DemoSources:
    """Write the council, health and social-care demo files under ``directory``."""
    rng = random.Random(seed)  # noqa: S311 - synthetic demo data, deliberately reproducible
    lsoas = coventry_lsoas()
    nhs_numbers = _nhs_numbers(1_300)
    council = _write_council(directory / "council", rng, lsoas)
    council += _write_council_extra(directory / "council", seed, lsoas, nhs_numbers)
    health = _write_health(directory / "health", rng, lsoas, nhs_numbers[:1_000], seed)
    care = _write_social_care(directory / "social-care", rng, lsoas, nhs_numbers)
    return {"council": council, "health": health, "social-care": care}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


def _csv(header: tuple[str, ...] | list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _rfc3339(moment: datetime, nanoseconds: int = 0) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanoseconds:09d}Z"


# -- council: sensors, LoRaWAN uplinks, access points, RADIUS accounting ---------------------


SENSOR_KINDS = ("air-quality", "people-counter")


def _write_council(folder: Path, rng: random.Random, lsoas: list[Lsoa]) -> list[tuple[str, Path]]:
    # The README's example query asks for the first five areas: each has an air-quality
    # sensor and a people counter; 20 more devices stand in 19 other areas.
    featured = lsoas[:5]
    others = rng.sample(lsoas[5:], 19)
    placements = [(place, kind) for kind in SENSOR_KINDS for place in featured] + [
        (others[index % len(others)], SENSOR_KINDS[index % 2]) for index in range(20)
    ]
    sensors: list[list[object]] = []
    for index, (place, kind) in enumerate(placements):
        prefix, model = ("aq", "am308") if kind == "air-quality" else ("pc", "vs350")
        device_id = f"{prefix}-{place.name.split()[-1].lower()}-{index:02d}"
        sensors.append(
            [
                device_id,
                model,
                kind,
                place.code,
                round(place.latitude + rng.uniform(-0.002, 0.002), 5),
                round(place.longitude + rng.uniform(-0.002, 0.002), 5),
            ]
        )
    access_points = [
        [_mac(rng, "-", upper=True), "CoventryFreeWiFi", f"cov-ap-{index:02d}", place.code]
        for index, place in enumerate(rng.sample(lsoas, 20), start=1)
    ]
    return [
        (
            "sensor-inventory",
            _write(folder / "sensor_inventory.csv", _csv(SENSOR_COLUMNS, sensors)),
        ),
        ("things-stack-uplinks", _write(folder / "uplinks.ndjson", _uplinks(rng, sensors))),
        (
            "access-point-inventory",
            _write(folder / "access_points.csv", _csv(ACCESS_POINT_COLUMNS, access_points)),
        ),
        ("freeradius-detail", _write(folder / "detail-20261001", _detail(rng, access_points))),
    ]


def _write_council_extra(
    folder: Path, seed: int, lsoas: list[Lsoa], nhs_numbers: list[str]
) -> list[tuple[str, Path]]:
    """The Meraki presence feed and the H-CLIC return, each from its own seeded generator so
    adding them left every earlier file byte-identical."""
    aps = list(csv.reader((folder / "access_points.csv").read_text("utf-8").splitlines()))[1:]
    presence = random.Random(f"{seed}-meraki")  # noqa: S311 - synthetic, reproducible
    housing = random.Random(f"{seed}-hclic")  # noqa: S311 - synthetic, reproducible
    # 150 cases: 60 people also known to health, 20 to nobody else, 70 without an NHS number
    people = [*housing.sample(nhs_numbers[:1_000], 60), *nhs_numbers[1_150:1_170], *[""] * 70]
    housing.shuffle(people)
    feed = meraki_feed(presence, [row[0] for row in aps], WINDOW_START, UPLINK_DAYS)
    codes = [lsoa.code for lsoa in lsoas]
    return [
        ("meraki-scanning", _write(folder / "meraki-scanning.ndjson", feed)),
        ("hclic-xml", _write(folder / "hclic-2026-q2.xml", hclic_return(housing, codes, people))),
    ]


def _uplinks(rng: random.Random, sensors: list[list[object]]) -> str:
    lines = []
    counters = dict.fromkeys((str(row[0]) for row in sensors), 0)
    background = {str(row[0]): rng.uniform(4, 14) for row in sensors}
    for step in range(UPLINK_DAYS * 24 * 60 // UPLINK_MINUTES):
        slot = WINDOW_START + timedelta(minutes=UPLINK_MINUTES * step)
        hour = slot.hour + slot.minute / 60
        busy = max(0.0, 1 - abs(hour - 8.5) / 3) + max(0.0, 1 - abs(hour - 17.5) / 3)
        for index, (device_id, model, *_rest) in enumerate(sensors):
            device = str(device_id)
            counters[device] += 1
            if model == "am308":
                pm2_5 = round(background[device] * (1 + busy) + rng.uniform(0, 4))
                values = {
                    "battery": 90 + index % 10,
                    "temperature": round(11 + 4 * busy + rng.uniform(-1, 1), 1),
                    "humidity": rng.randrange(120, 180) / 2,
                    "co2": rng.randrange(410, 480),
                    "pm2_5": pm2_5,
                    "pm10": pm2_5 + rng.randrange(3, 12),
                }
                payload = _am308(values)
                decoded = values if index % 2 == 0 else None
            else:
                people = round((2 + 40 * busy) * rng.uniform(0.6, 1.4))
                payload = _vs350(people, round(people * rng.uniform(0.8, 1.2)), 80 + index % 20)
                decoded = None
            received = slot + timedelta(seconds=index * 7 + 2)
            message = _up_message(rng, device, model, received, counters[device], payload, decoded)
            lines.append(json.dumps(message, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def _am308(values: dict[str, float]) -> bytes:
    return b"".join(
        [
            bytes([0x01, 0x75, int(values["battery"])]),
            bytes([0x03, 0x67])
            + round(values["temperature"] * 10).to_bytes(2, "little", signed=True),
            bytes([0x04, 0x68, int(values["humidity"] * 2)]),
            bytes([0x07, 0x7D]) + int(values["co2"]).to_bytes(2, "little"),
            bytes([0x0B, 0x7D]) + int(values["pm2_5"]).to_bytes(2, "little"),
            bytes([0x0C, 0x7D]) + int(values["pm10"]).to_bytes(2, "little"),
        ]
    )


def _vs350(people_in: int, people_out: int, battery: int) -> bytes:
    return (
        bytes([0x01, 0x75, battery, 0x05, 0xCC])
        + people_in.to_bytes(2, "little")
        + people_out.to_bytes(2, "little")
    )


def _up_message(
    rng: random.Random,
    device_id: str,
    model: str,
    received: datetime,
    f_cnt: int,
    payload: bytes,
    decoded: dict[str, float] | None,
) -> dict[str, object]:
    air_time = received - timedelta(milliseconds=rng.randrange(20, 200))
    nanos = rng.randrange(1_000_000_000)
    uplink: dict[str, object] = {
        "f_port": 85,
        "f_cnt": f_cnt,
        "frm_payload": base64.b64encode(payload).decode("ascii"),
    }
    if decoded is not None:
        uplink["decoded_payload"] = decoded
    rssi = rng.randrange(-118, -70)
    uplink.update(
        {
            "rx_metadata": [
                {
                    "gateway_ids": {"gateway_id": GATEWAYS[rng.randrange(len(GATEWAYS))]},
                    "time": _rfc3339(air_time, nanos),
                    "rssi": rssi,
                    "channel_rssi": rssi,
                    "snr": round(rng.uniform(-8, 10), 2),
                }
            ],
            "settings": {
                "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7 + f_cnt % 3}},
                "frequency": "868100000",
                "time": _rfc3339(air_time, nanos),
            },
            "received_at": _rfc3339(received, nanos),
            "version_ids": {
                "brand_id": "milesight-iot",
                "model_id": model,
                "band_id": "EU_863_870",
            },
        }
    )
    return {
        "end_device_ids": {
            "device_id": device_id,
            "application_ids": {"application_id": "coventry-air-and-footfall"},
        },
        "received_at": _rfc3339(received, nanos),
        "uplink_message": uplink,
    }


def _mac(rng: random.Random, separator: str, *, upper: bool = False) -> str:
    octets = [0x02 | (rng.randrange(256) & 0xFC)] + [rng.randrange(256) for _ in range(5)]
    text = separator.join(f"{octet:02x}" for octet in octets)
    return text.upper() if upper else text


def _detail(rng: random.Random, access_points: list[list[object]]) -> str:
    events: list[tuple[datetime, int, dict[str, str]]] = []
    for session in range(820):
        ap_mac, ssid, nas, _lsoa = access_points[rng.randrange(len(access_points))]
        day = rng.randrange(UPLINK_DAYS)
        start = WINDOW_START + timedelta(days=day, seconds=rng.randrange(7 * 3600, 22 * 3600))
        length = rng.randrange(120, 5400)
        device = _mac(rng, "-", upper=True)
        session_id = f"{rng.getrandbits(64):016X}"
        common = {
            "NAS-Identifier": f'"{nas}"',
            "Called-Station-Id": f'"{ap_mac}:{ssid}"',
            "Calling-Station-Id": f'"{device}"',
            "Acct-Session-Id": f'"{session_id}"',
            "Acct-Unique-Session-Id": f'"{rng.getrandbits(64):016x}"',
        }
        marks = [(0, "Start")]
        marks += [(offset, "Interim-Update") for offset in range(600, length, 600)][:2]
        marks.append((length, "Stop"))
        for offset, status in marks:
            at = start + timedelta(seconds=offset)
            attributes = {"Acct-Status-Type": status, **common}
            if status != "Start":
                octets = offset * rng.randrange(200, 4000)
                attributes["Acct-Session-Time"] = str(offset)
                attributes["Acct-Input-Octets"] = str(octets // 8)
                attributes["Acct-Output-Octets"] = str(octets)
            attributes["Event-Timestamp"] = f'"{at:%b} {at.day:2d} {at:%Y %H:%M:%S} UTC"'
            attributes["Timestamp"] = str(int(at.timestamp()))
            events.append((at, session, attributes))
    events.sort(key=lambda event: (event[0], event[1]))
    blocks = []
    for at, _session, attributes in events:
        lines = [f"{at:%a %b} {at.day:2d} {at:%H:%M:%S %Y}"]
        lines += [f"\t{name} = {value}" for name, value in attributes.items()]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


# -- health: FHIR R4 bundles of patients and encounters --------------------------------------


def _nhs_numbers(count: int) -> list[str]:
    """The first ``count`` valid NHS numbers from 999 000 1000 upward (never issued)."""
    numbers: list[str] = []
    base = 999_000_100
    while len(numbers) < count:
        digits = str(base)
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = (11 - total % 11) % 11
        if check != 10:
            numbers.append(f"{digits}{check}")
        base += 1
    return numbers


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _residences(lsoas: list[Lsoa], *, featured_weight: int) -> list[Lsoa]:
    """Where people live: every area, but the five featured ones far more often.

    Spread evenly, a thousand people give each of 203 areas a handful of records, and
    disclosure control (rightly) suppresses every cell; real services are also
    concentrated. Weighting the five areas the example query asks about gives them counts
    that survive suppression, while the rest stay small and show suppression at work.
    """
    return [*lsoas, *lsoas[:5] * featured_weight]


def _write_health(
    folder: Path, rng: random.Random, lsoas: list[Lsoa], nhs_numbers: list[str], seed: int
) -> list[tuple[str, Path]]:
    written = []
    clinical = random.Random(f"{seed}-clinical")  # noqa: S311 - synthetic, reproducible
    classes = ("AMB", "AMB", "AMB", "EMER", "EMER", "IMP")
    residences = _residences(lsoas, featured_weight=30)
    for bundle_index in range(0, len(nhs_numbers), 100):
        entries: list[dict[str, object]] = []
        for offset, nhs in enumerate(nhs_numbers[bundle_index : bundle_index + 100]):
            number = bundle_index + offset + 1
            patient_url = f"urn:uuid:{_uuid(rng)}"
            address: dict[str, object] = {"use": "home", "city": "Coventry"}
            if rng.random() > 0.03:
                place = rng.choice(residences)
                address["extension"] = [{"url": LSOA_EXTENSION_URL, "valueCode": place.code}]
            entries.append(
                {
                    "fullUrl": patient_url,
                    "resource": {
                        "resourceType": "Patient",
                        "id": f"pat-{number:05d}",
                        "identifier": [{"system": NHS_NUMBER_SYSTEM, "value": nhs}],
                        "gender": rng.choice(("female", "male", "female", "male", "other")),
                        "birthDate": date(
                            1930 + rng.randrange(75), 1 + rng.randrange(12), 1 + rng.randrange(28)
                        ).isoformat(),
                        "address": [address],
                    },
                }
            )
            entries += clinical_entries(clinical, number, patient_url, WINDOW_START)
            for visit in range(1 + rng.randrange(4)):
                code = rng.choice(classes)
                start = WINDOW_START + timedelta(minutes=rng.randrange(30 * 24 * 60))
                hours = {"AMB": 1, "EMER": 5, "IMP": 96}[code] * rng.uniform(0.3, 1.5)
                period = {"start": start.isoformat()}
                status = "in-progress" if code == "IMP" and rng.random() < 0.2 else "finished"
                if status == "finished":
                    period["end"] = (start + timedelta(hours=hours)).replace(second=0).isoformat()
                entries.append(
                    {
                        "fullUrl": f"urn:uuid:{_uuid(rng)}",
                        "resource": {
                            "resourceType": "Encounter",
                            "id": f"enc-{number:05d}-{visit + 1}",
                            "status": status,
                            "class": {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                "code": code,
                            },
                            "subject": {"reference": patient_url},
                            "period": period,
                        },
                    }
                )
        bundle = {
            "resourceType": "Bundle",
            "id": f"coventry-health-{bundle_index // 100 + 1:02d}",
            "type": "collection",
            "timestamp": "2026-10-31T23:59:00+00:00",
            "entry": entries,
        }
        path = folder / f"bundle-{bundle_index // 100 + 1:02d}.json"
        written.append(("fhir-bundle", _write(path, json.dumps(bundle, indent=1) + "\n")))
    return written


# -- social care: one CLD quarterly return ----------------------------------------------------


def _write_social_care(
    folder: Path, rng: random.Random, lsoas: list[Lsoa], nhs_numbers: list[str]
) -> list[tuple[str, Path]]:
    shared = rng.sample(nhs_numbers[:1_000], 220)
    own = nhs_numbers[1_000:1_150]
    people = [*shared, *own, *([""] * 30)]
    rng.shuffle(people)
    services = (
        "Long Term Support: Community",
        "Long Term Support: Residential Care",
        "Long Term Support: Nursing Care",
        "Short Term Support: ST-Max",
        "Short Term Support: Other Short Term",
    )
    residences = _residences(lsoas, featured_weight=60)
    rows: list[list[object]] = []
    for index, nhs in enumerate(people, start=1):
        person = f"CV{index:06d}"
        place = rng.choice(residences).code
        gender = rng.choice(("Female", "Male"))
        for event in range(1 + (index % 2)):
            kind = rng.choice(("Request", "Assessment", "Service", "Service", "Review"))
            start = date(2026, 8, 1) + timedelta(days=rng.randrange(92))
            is_open = kind == "Service" and rng.random() < 0.5
            end = "" if is_open else (start + timedelta(days=rng.randrange(0, 60))).isoformat()
            service = rng.choice(services) if kind == "Service" else ""
            rows.append(
                [
                    "E08000026",
                    "2026-10-01",
                    "2026-12-31",
                    person,
                    nhs,
                    gender,
                    "Service User",
                    "Physical Support: Personal Care Support",
                    kind,
                    f"{kind[:3].upper()}-{index:06d}-{event + 1}",
                    start.isoformat(),
                    end,
                    "",
                    service,
                    "",
                    "",
                    place,
                ]
            )
    header = [*CLD_COLUMNS, LOCAL_LSOA_COLUMN]
    return [("cld-csv", _write(folder / "cld-2026-10.csv", _csv(header, rows)))]
