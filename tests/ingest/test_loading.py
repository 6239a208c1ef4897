"""Loading on SQLite and PostgreSQL: bad input quarantined, replays exact, roll-ups right,
no identifier anywhere in the store, unknown devices held back until registered."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from datatrust import adapters
from datatrust.federation.subgraphs._data import (
    air_quality_by_area,
    footfall_by_area,
    wifi_sessions_by_area,
)
from datatrust.ingest import (
    Pseudonymiser,
    ReplayReport,
    _pipeline,
    ingest_file,
    list_quarantine,
    replay_quarantine,
    source_format,
    write_rows,
)
from datatrust.policies import Permit
from datatrust.store import QuarantinedRecord, create_store_engine, is_partition, migrate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# (format, fixture, node): inventories first, so readings find their sensors.
ALL_FIXTURES = [
    ("sensor-inventory", "sensor_inventory.csv", "council"),
    ("sensor-inventory", "sensor_inventory_bad.csv", "council"),
    ("things-stack-uplinks", "things_stack_uplinks.ndjson", "council"),
    ("things-stack-uplinks", "things_stack_uplinks_bad.ndjson", "council"),
    ("chirpstack-uplinks", "chirpstack_uplinks.ndjson", "council"),
    ("chirpstack-uplinks", "chirpstack_uplinks_bad.ndjson", "council"),
    ("access-point-inventory", "access_point_inventory.csv", "council"),
    ("access-point-inventory", "access_point_inventory_bad.csv", "council"),
    ("freeradius-detail", "freeradius_detail", "council"),
    ("freeradius-detail", "freeradius_detail_bad", "council"),
    ("meraki-scanning", "meraki_scanning_wifi.json", "council"),
    ("meraki-scanning", "meraki_scanning_ble.json", "council"),
    ("meraki-scanning", "meraki_scanning_bad.ndjson", "council"),
    ("fhir-bundle", "fhir_bundle.json", "health"),
    ("fhir-bundle", "fhir_bundle_bad.json", "health"),
    ("cld-csv", "cld.csv", "social-care"),
    ("cld-csv", "cld_bad.csv", "social-care"),
]
_READERS = {
    "chirpstack-uplinks": "read_chirpstack_uplinks",
    "meraki-scanning": "read_meraki_scanning",
}


def _available() -> list[tuple[str, str, str]]:
    """The fixtures whose file and adapter reader exist in this checkout."""
    return [
        (fmt, name, node)
        for fmt, name, node in ALL_FIXTURES
        if (FIXTURES / name).exists() and hasattr(adapters, _READERS.get(fmt, "redact"))
    ]


@pytest.fixture
def store(store_url):
    engine = create_store_engine(store_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pseudonymiser(tmp_path):
    return Pseudonymiser(trust_key=b"k" * 32, wifi_key_dir=tmp_path / "keys" / "council")


def _ingest(engine, pseudonymiser, fmt: str, path: Path, node: str = "council"):
    return ingest_file(engine, path, source_format(fmt, node_id=node), pseudonymiser)


def _ingest_all(engine, pseudonymiser) -> None:
    for fmt, name, node in _available():
        _ingest(engine, pseudonymiser, fmt, FIXTURES / name, node)


def _dump(engine, *, skip: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every table's rows (ordered), without the partitions PostgreSQL also lists."""
    names = sorted(n for n in inspect(engine).get_table_names() if not is_partition(n))
    with engine.connect() as connection:
        return {
            name: sorted(
                (
                    tuple(str(v) for v in row)
                    for row in connection.execute(text(f"SELECT * FROM {name}"))  # noqa: S608 (our own table and column names)
                ),
            )
            for name in names
            if name not in skip
        }


BAD = [
    ("sensor-inventory", "sensor_inventory_bad.csv", "council", 1, 3),
    ("things-stack-uplinks", "things_stack_uplinks_bad.ndjson", "council", 2, 5),
    ("freeradius-detail", "freeradius_detail_bad", "council", 1, 2),
    ("fhir-bundle", "fhir_bundle_bad.json", "health", 2, 4),
    ("cld-csv", "cld_bad.csv", "social-care", 1, 3),
]


@pytest.mark.parametrize(("fmt", "name", "node", "good", "bad"), BAD)
def test_each_bad_fixture_quarantines_its_bad_records_and_loads_the_good_ones_around_them(
    store, pseudonymiser, fmt, name, node, good, bad
):
    if fmt != "sensor-inventory":  # readings need their sensors
        _ingest(store, pseudonymiser, "sensor-inventory", FIXTURES / "sensor_inventory.csv")
    report = _ingest(store, pseudonymiser, fmt, FIXTURES / name, node)
    assert (report.status, report.records_loaded, report.records_quarantined) == (
        "loaded",
        good,
        bad,
    )
    entries = list_quarantine(store, limit=100, format=fmt)
    assert len(entries) == bad
    for entry in entries:
        # The place: file and line, record or JSON pointer; the reason opens with the field
        # or the line it is about.
        assert re.match(rf"{re.escape(name)}(:\d+|#/)", entry.location), entry.location
        assert re.match(r"^[\w./#-]+ ", entry.reason), entry.reason


def test_a_reading_from_an_unknown_device_waits_in_quarantine_until_it_is_registered(
    store, pseudonymiser, tmp_path
):
    _ingest(store, pseudonymiser, "sensor-inventory", FIXTURES / "sensor_inventory.csv")
    line = (FIXTURES / "things_stack_uplinks.ndjson").read_text().splitlines()[0]
    stranger = tmp_path / "stranger.ndjson"
    stranger.write_text(line.replace('"aq-014a-01"', '"aq-099z-07"') + "\n" + line + "\n")
    report = _ingest(store, pseudonymiser, "things-stack-uplinks", stranger)
    assert (report.records_loaded, report.records_quarantined) == (1, 1)
    (entry,) = list_quarantine(store, limit=10)
    assert entry.reason == ("unknown device aq-099z-07: register it in the sensor inventory first")
    assert entry.location == f"{stranger}: uplink received 2026-10-01T08:00:00.123456Z"
    assert replay_quarantine(store, pseudonymiser) == ReplayReport((), ((entry.id, entry.reason),))

    inventory = tmp_path / "more_sensors.csv"
    inventory.write_text(
        "device_id,model,kind,lsoa_code,latitude,longitude\n"
        "aq-099z-07,am308,air-quality,E01009523,52.41,-1.51\n"
    )
    _ingest(store, pseudonymiser, "sensor-inventory", inventory)
    before = _readings(store)
    assert replay_quarantine(store, pseudonymiser) == ReplayReport((entry.id,), ())
    assert replay_quarantine(store, pseudonymiser) == ReplayReport((), ())  # once only
    added = _readings(store) - before
    assert {device for device, _ in added} == {"aq-099z-07"}
    assert list_quarantine(store, limit=10) == []
    with store.connect() as connection:
        hourly = connection.execute(
            text("SELECT lsoa_code, count FROM reading_hourly WHERE device_id = 'aq-099z-07'")
        ).all()
    assert {code for code, _ in hourly} == {"E01009523"}
    assert sum(n for _, n in hourly) == len(added)


def _readings(engine) -> set[tuple[str, str]]:
    with engine.connect() as connection:
        return set(connection.execute(text("SELECT device_id, quantity FROM reading")).all())


def test_a_record_replays_from_its_sealed_original_after_a_codec_fix_and_registration(
    store, pseudonymiser, monkeypatch
):
    """The raw copy is redacted; the sealed original is what replay reads again."""
    _ingest(store, pseudonymiser, "sensor-inventory", FIXTURES / "sensor_inventory.csv")
    _ingest(
        store, pseudonymiser, "things-stack-uplinks", FIXTURES / "things_stack_uplinks_bad.ndjson"
    )
    (entry,) = [e for e in list_quarantine(store, limit=20) if "ers-co2" in e.reason]
    with store.connect() as connection:
        sealed = connection.execute(
            select(QuarantinedRecord.raw_sealed).where(QuarantinedRecord.id == entry.id)
        ).scalar_one()
    line = (FIXTURES / "things_stack_uplinks_bad.ndjson").read_text().splitlines()[3]
    assert pseudonymiser.sealer.unseal(sealed) == {"text": line}
    assert "aq-014a-02" not in sealed

    monkeypatch.setitem(adapters.CODECS, "ers-co2", adapters.CODECS["am308"])  # the fix
    unknown = "unknown device aq-014a-02: register it in the sensor inventory first"
    assert replay_quarantine(store, pseudonymiser, ids=[entry.id]) == ReplayReport(
        (), ((entry.id, unknown),)
    )
    more = (FIXTURES / "sensor_inventory.csv").read_text()
    more += "aq-014a-02,ers-co2,air-quality,E01009522,52.4,-1.5\n"
    _load_inventory_text(store, pseudonymiser, more)
    assert replay_quarantine(store, pseudonymiser, ids=[entry.id]) == ReplayReport((entry.id,), ())
    with store.connect() as connection:
        devices = connection.execute(text("SELECT DISTINCT device_id FROM reading")).scalars()
        assert "aq-014a-02" in set(devices)


def _load_inventory_text(engine, pseudonymiser, body: str) -> None:
    from datatrust.ingest import load_items

    items = source_format("sensor-inventory", node_id="council").read(body, "inventory.csv")
    load_items(
        engine,
        items,
        source="inventory.csv",
        format_name="sensor-inventory",
        pseudonymiser=pseudonymiser,
    )


def test_loading_every_fixture_twice_leaves_every_table_exactly_as_it_was(store, pseudonymiser):
    _ingest_all(store, pseudonymiser)
    first = _dump(store, skip=("ingest_batch", "quarantined_record"))
    with store.begin() as connection:  # forget the batches: the files really load again
        connection.execute(text("DELETE FROM ingest_batch"))
    _ingest_all(store, pseudonymiser)
    assert _dump(store, skip=("ingest_batch", "quarantined_record")) == first
    assert [name for name in ("reading", "wifi_session", "person") if not first[name]] == []


def test_no_mac_address_or_nhs_number_is_anywhere_in_the_store(store, pseudonymiser):
    _ingest_all(store, pseudonymiser)
    dump = json.dumps(_dump(store)).lower()
    identifiers = _personal_identifiers()
    assert len(identifiers) >= 5
    leaked = sorted(i for i in identifiers if i.lower() in dump)
    assert leaked == []


def _personal_identifiers() -> set[str]:
    """Client MACs (every spelling) and NHS numbers (valid or not) written in the fixtures."""
    found: set[str] = set()
    for fmt, name, _ in _available():
        body = (FIXTURES / name).read_text(errors="replace")
        if fmt in ("freeradius-detail", "meraki-scanning"):
            for mac in re.findall(r'(?:Calling-Station-Id = "|"clientMac": *")([^"]+)"', body):
                digits = re.sub(r"[^0-9a-fA-F]", "", mac)
                if len(digits) == 12:
                    pairs = [digits[i : i + 2] for i in range(0, 12, 2)]
                    found |= {":".join(pairs), "-".join(pairs), digits}
        if fmt in ("fhir-bundle", "cld-csv"):
            found |= set(re.findall(r"(?<!\d)\d{10}(?!\d)", body))
    return found


def _uplinks(count: int) -> str:
    start = datetime(2026, 10, 1, 6, tzinfo=UTC)
    lines = []
    for n in range(count):
        when = (start + timedelta(minutes=7 * n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        device = ("aq-014a-01", "pc-014a-01")[n % 2]
        payload = (
            {"pm2_5": 10 + n % 7, "pm10": 20 + n % 5}
            if device.startswith("aq")
            else {"people_in": n % 4, "people_out": 1}
        )
        model = "am308" if device.startswith("aq") else "vs350"
        lines.append(
            json.dumps(
                {
                    "end_device_ids": {"device_id": device},
                    "received_at": when,
                    "uplink_message": {
                        "f_cnt": n,
                        "decoded_payload": payload,
                        "received_at": when,
                        "version_ids": {"model_id": model},
                    },
                }
            )
        )
    return "\n".join(lines) + "\n"


def test_roll_ups_are_the_same_whatever_the_chunking_and_however_often_data_is_loaded(
    store_url, pseudonymiser, tmp_path, monkeypatch
):
    uplinks = tmp_path / "uplinks.ndjson"
    uplinks.write_text(_uplinks(500))
    results = []
    for chunk, times in ((2000, 1), (7, 2), (1, 1)):
        engine = create_store_engine(store_url)
        migrate(engine)
        with engine.begin() as connection:  # each round starts from empty data tables
            for table in ("reading", "reading_hourly", "sensor", "ingest_batch"):
                connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608
        monkeypatch.setattr(_pipeline, "CHUNK_RECORDS", chunk)
        _ingest(engine, pseudonymiser, "sensor-inventory", FIXTURES / "sensor_inventory.csv")
        for _ in range(times):
            with engine.begin() as connection:
                connection.execute(text("DELETE FROM ingest_batch"))
            _ingest(engine, pseudonymiser, "things-stack-uplinks", uplinks)
        with engine.connect() as connection:
            hourly = connection.execute(
                text(
                    "SELECT device_id, lsoa_code, quantity, hour, count, total, minimum, maximum"
                    " FROM reading_hourly ORDER BY device_id, quantity, hour"
                )
            ).all()
            raw = connection.execute(
                text("SELECT device_id, quantity, received_at, value FROM reading")
            ).all()
        engine.dispose()
        results.append([tuple(str(v) for v in row) for row in hourly])
        assert sum(row[4] for row in hourly) == len(raw) == 1000
    assert results[0] == results[1] == results[2]
    assert len(results[0]) > 20


def test_area_statistics_from_the_roll_ups_equal_those_from_raw_rows(
    store, pseudonymiser, tmp_path
):
    uplinks = tmp_path / "uplinks.ndjson"
    uplinks.write_text(_uplinks(900))
    _ingest(store, pseudonymiser, "sensor-inventory", FIXTURES / "sensor_inventory.csv")
    _ingest(store, pseudonymiser, "things-stack-uplinks", uplinks)
    _ingest(store, pseudonymiser, "access-point-inventory", FIXTURES / "access_point_inventory.csv")
    _ingest(store, pseudonymiser, "freeradius-detail", FIXTURES / "freeradius_detail")
    permit = Permit(purpose="test", fields=frozenset(), policy_version="test")
    codes = ["E01009522", "E01009523"]
    since, until = date(2026, 10, 2), date(2026, 10, 3)
    with store.connect() as connection:
        raw_people = connection.execute(
            text(
                "SELECT sum(value) FROM reading WHERE quantity = 'people_in' "
                "AND received_at >= :a AND received_at < :b"
            ),
            {"a": datetime(2026, 10, 2, tzinfo=UTC), "b": datetime(2026, 10, 4, tzinfo=UTC)},
        ).scalar()
        raw_pm = connection.execute(
            text("SELECT avg(value), count(*) FROM reading WHERE quantity = 'pm2_5'")
        ).one()
        raw_sessions = connection.execute(text("SELECT count(*) FROM wifi_session")).scalar()
    footfall = footfall_by_area(store, permit, codes, since, until)
    assert {code: cell.count for code, cell in footfall.items()} == {"E01009522": int(raw_people)}
    quality = air_quality_by_area(store, permit, codes, None, None)
    assert quality["E01009522"]["pm2_5"] == round(raw_pm[0], 2)
    assert quality["E01009522"]["count"] == 2 * raw_pm[1]  # pm2_5 and pm10
    sessions = wifi_sessions_by_area(store, permit, codes, None, None).values()
    assert sum(cell.count for cell in sessions) == raw_sessions


def test_a_newer_fhir_version_replaces_the_row_and_an_older_one_does_not(store):
    def encounter(version: int, status: str) -> dict:
        return {
            "encounter_id": "enc-1",
            "pseudonym": "p-1",
            "class_code": "EMER",
            "status": status,
            "started_at": datetime(2026, 10, 1, 9, tzinfo=UTC),
            "ended_at": None,
            "lsoa_code": None,
            "version": version,
        }

    for version, status in ((2, "in-progress"), (3, "finished"), (1, "planned")):
        with store.begin() as connection:
            write_rows(connection, {"encounter": [encounter(version, status)]})
    with store.connect() as connection:
        rows = connection.execute(text("SELECT version, status FROM encounter")).all()
    assert [tuple(r) for r in rows] == [(3, "finished")]


@pytest.mark.postgres
def test_a_month_of_readings_gets_its_own_partition_on_postgres(
    postgres_url, pseudonymiser, tmp_path
):
    store = create_store_engine(postgres_url)
    migrate(store)
    uplinks = tmp_path / "uplinks.ndjson"
    uplinks.write_text(_uplinks(10))
    _ingest(store, pseudonymiser, "sensor-inventory", FIXTURES / "sensor_inventory.csv")
    _ingest(store, pseudonymiser, "things-stack-uplinks", uplinks)
    with store.connect() as connection:
        counts = dict(
            connection.execute(
                text("SELECT tableoid::regclass::text, count(*) FROM reading GROUP BY 1")
            ).all()
        )
    assert counts == {"reading_y2026m10": 20}
    store.dispose()
