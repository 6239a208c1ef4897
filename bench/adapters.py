"""Adapter parse speed: microseconds per record, against the cheapest possible read.

python bench/adapters.py [--repeat 5] [--sessions 30000]

Three sources, each read whole by its adapter (records built and validated, nothing stored):

- The Things Stack uplinks: the demo's NDJSON (a week of 120 sensors, every 15 minutes);
- ChirpStack v4 ``up`` events: the same uplinks rewritten as ChirpStack JSON-marshaler events;
- FreeRADIUS accounting: a detail file of ``--sessions`` Start, Interim-Update and Stop records.

The baseline, measured in the same run on the same text, is what any reader must at least
do: ``json.loads`` of each line for the JSON formats; ``str.splitlines`` plus
``split(" = ")`` on every attribute line for the detail file (neither keeps what it
decoded). The adapters' records are consumed as ingest consumes them, in chunks of 2,000
(``ingest._pipeline.CHUNK_RECORDS``). Times are CPU time of this process (other work on
the machine does not count), the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from datatrust import _prepare
from datatrust.adapters import (
    SensorUplink,
    WifiAccounting,
    read_chirpstack_uplinks,
    read_freeradius_detail,
    read_things_stack_uplinks,
)
from datatrust.adapters._json import orjson_in_use


def things_stack_text(folder: Path) -> str:
    demo = _prepare.write_demo_files(folder)
    (_, source) = next(f for f in demo["council"] if f[0] == "things-stack-uplinks")
    return source.read_text()


def chirpstack_text(tts: str) -> str:
    """Each The Things Stack message as the ChirpStack v4 ``up`` event for the same frame."""
    lines = []
    for line in tts.splitlines():
        up = json.loads(line)
        uplink = up["uplink_message"]
        device = up["end_device_ids"]["device_id"]
        gateway = uplink["rx_metadata"][0]
        event = {
            "deduplicationId": hashlib.md5(line.encode()).hexdigest(),  # noqa: S324 (an id)
            "time": up["received_at"].replace("Z", "+00:00"),
            "deviceInfo": {
                "tenantName": "Coventry City Council",
                "applicationName": "coventry-air-and-footfall",
                "deviceProfileName": uplink["version_ids"]["model_id"].upper(),
                "deviceName": device,
                "devEui": hashlib.sha256(device.encode()).hexdigest()[:16],
            },
            "devAddr": "00189440",
            "adr": True,
            "dr": 5,
            "fCnt": uplink["f_cnt"],
            "fPort": uplink["f_port"],
            "confirmed": False,
            "data": uplink["frm_payload"],
            **({"object": uplink["decoded_payload"]} if "decoded_payload" in uplink else {}),
            "rxInfo": [
                {
                    "gatewayId": hashlib.sha256(
                        gateway["gateway_ids"]["gateway_id"].encode()
                    ).hexdigest()[:16],
                    "uplinkId": 4217106255,
                    "nsTime": gateway["time"].replace("Z", "+00:00"),
                    "rssi": gateway["rssi"],
                    "snr": gateway["snr"],
                    "channel": 2,
                    "crcStatus": "CRC_OK",
                }
            ],
            "txInfo": {"frequency": 868100000, "modulation": {"lora": {"bandwidth": 125000}}},
        }
        lines.append(json.dumps(event))
    return "\n".join(lines) + "\n"


def detail_text(sessions: int) -> str:
    """``sessions`` sessions of Start, Interim-Update and Stop, as rlm_detail writes them."""
    start = datetime(2026, 9, 1, 7, tzinfo=UTC)
    parts = []
    for n in range(sessions):
        began = start + timedelta(seconds=37 * n)
        mac = "-".join(f"{b:02X}" for b in (0x02, n >> 16 & 255, n >> 8 & 255, n & 255, 7, 9))
        ap = "-".join(f"{b:02X}" for b in (0x11, 0x22, 0x33, 0x44, 0x55, n % 40))
        for status, after in (("Start", 0), ("Interim-Update", 600), ("Stop", 900)):
            at = began + timedelta(seconds=after)
            parts.append(
                f"{at:%a %b %d %H:%M:%S %Y}\n"
                f"\tAcct-Status-Type = {status}\n"
                f'\tNAS-Identifier = "cov-ap-{n % 40:02d}"\n'
                f"\tNAS-IP-Address = 10.20.0.{n % 40}\n"
                f'\tCalled-Station-Id = "{ap}:CoventryFreeWiFi"\n'
                f'\tCalling-Station-Id = "{mac}"\n'
                f'\tAcct-Session-Id = "S{n:015X}"\n'
                f'\tAcct-Unique-Session-Id = "u{n:015x}"\n'
                f'\tEvent-Timestamp = "{at:%b %e %Y %H:%M:%S} UTC"\n'
                + (
                    f"\tAcct-Session-Time = {after}\n\tAcct-Input-Octets = {after * 99}\n"
                    f"\tAcct-Output-Octets = {after * 301}\n"
                    if after
                    else ""
                )
                + f"\tTimestamp = {int(at.timestamp())}\n\n"
            )
    return "".join(parts)


CHUNK = 2000


def consume(items: Iterable[object], kind: type | None = None) -> int:
    """How many items, taken in chunks as ingest takes them; each must be a ``kind``."""
    count = 0
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK)):
        count += len(chunk)
        if kind is not None and not all(isinstance(item, kind) for item in chunk):
            bad = next(item for item in chunk if not isinstance(item, kind))
            raise SystemExit(f"the bench input has a bad record: {bad}")
    return count


def json_baseline(text: str) -> int:
    loads = json.loads
    count = 0
    for line in text.splitlines():
        loads(line)
        count += 1
    return count


def detail_baseline(text: str) -> int:
    count = 0
    for line in text.splitlines():
        if not line:
            continue
        if line[0] == "\t":
            line.split(" = ")
        else:
            count += 1
    return count


def best_seconds(run: Callable[[], int], repeat: int) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(repeat):
        started = time.process_time()
        count = run()
        best = min(best, time.process_time() - started)
    return best, count


def adapter_run(
    read: Callable[[str, str], Iterable[object]], text: str, kind: type
) -> Callable[[], int]:
    return lambda: consume(read(text, "bench"), kind)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; best is kept")
    parser.add_argument("--sessions", type=int, default=30_000, help="RADIUS sessions (x3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tts = things_stack_text(Path(name))
    cases = [
        ("TTS uplinks", tts, read_things_stack_uplinks, SensorUplink, json_baseline),
        (
            "ChirpStack uplinks",
            chirpstack_text(tts),
            read_chirpstack_uplinks,
            SensorUplink,
            json_baseline,
        ),
        (
            "RADIUS records",
            detail_text(args.sessions),
            read_freeradius_detail,
            WifiAccounting,
            detail_baseline,
        ),
    ]
    print(f"JSON decoder: {'orjson' if orjson_in_use() else 'json (stdlib)'}")
    print(
        f"{'source':<20} {'records':>8} {'adapter µs':>11} {'records/s':>10} "
        f"{'baseline µs':>12} {'ratio':>6}"
    )
    for label, text, read, kind, baseline in cases:
        seconds, records = best_seconds(adapter_run(read, text, kind), args.repeat)
        base_seconds, base_records = best_seconds(lambda t=text, b=baseline: b(t), args.repeat)
        assert base_records == records, (base_records, records)
        per = seconds / records * 1e6
        base_per = base_seconds / records * 1e6
        print(
            f"{label:<20} {records:>8} {per:>11.2f} {records / seconds:>10.0f} "
            f"{base_per:>12.2f} {per / base_per:>5.1f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
