"""Files through adapters and ingest into a real store: pseudonymised, idempotent, nothing lost."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from datatrust.errors import SettingsError
from datatrust.ingest import Pseudonymiser, ingest_file, source_format
from datatrust.store import (
    CareEpisode,
    Encounter,
    IngestBatch,
    Person,
    QuarantinedRecord,
    WifiSession,
    create_store_engine,
    migrate,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def store(store_url):
    engine = create_store_engine(store_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pseudonymiser(tmp_path):
    return Pseudonymiser(trust_key=b"k" * 32, wifi_key_dir=tmp_path / "wifi-keys")


def count(engine, model) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(model)).scalar_one()


def test_bad_records_are_quarantined_with_their_reason_and_the_good_ones_load(store, pseudonymiser):
    report = ingest_file(
        store,
        FIXTURES / "cld_bad.csv",
        source_format("cld-csv", node_id="social-care"),
        pseudonymiser,
    )
    assert report.status == "loaded"
    assert report.records_loaded + report.records_quarantined == 4
    assert report.records_quarantined >= 2
    assert count(store, CareEpisode) == report.records_loaded
    with store.connect() as connection:
        rows = connection.execute(
            select(QuarantinedRecord.location, QuarantinedRecord.reason, QuarantinedRecord.format)
        ).all()
    assert len(rows) == report.records_quarantined
    assert all(location.startswith("cld_bad.csv") for location, _, _ in rows)
    assert all(reason and fmt == "cld-csv" for _, reason, fmt in rows)


def test_loading_the_same_file_twice_adds_nothing(store, pseudonymiser):
    fmt = source_format("fhir-bundle", node_id="health")
    first = ingest_file(store, FIXTURES / "fhir_bundle.json", fmt, pseudonymiser)
    counts = (count(store, Person), count(store, Encounter), count(store, IngestBatch))
    second = ingest_file(store, FIXTURES / "fhir_bundle.json", fmt, pseudonymiser)
    assert first.status == "loaded"
    assert first.records_loaded > 0
    assert second.status == "skipped"
    assert (count(store, Person), count(store, Encounter), count(store, IngestBatch)) == counts


def test_the_same_content_under_another_name_duplicates_no_rows(store, pseudonymiser, tmp_path):
    fmt = source_format("freeradius-detail", node_id="council")
    copy = tmp_path / "detail-copy"
    shutil.copy(FIXTURES / "freeradius_detail", copy)
    ingest_file(store, FIXTURES / "freeradius_detail", fmt, pseudonymiser)
    sessions = count(store, WifiSession)
    with store.begin() as connection:  # forget the batch, as if the file were new
        connection.execute(IngestBatch.__table__.delete())
    ingest_file(store, copy, fmt, pseudonymiser)
    assert count(store, WifiSession) == sessions


def test_no_nhs_number_or_mac_address_reaches_a_table(store, pseudonymiser):
    ingest_file(
        store,
        FIXTURES / "fhir_bundle.json",
        source_format("fhir-bundle", node_id="health"),
        pseudonymiser,
    )
    ingest_file(
        store,
        FIXTURES / "freeradius_detail",
        source_format("freeradius-detail", node_id="council"),
        pseudonymiser,
    )
    raw_fhir = (FIXTURES / "fhir_bundle.json").read_text()
    raw_radius = (FIXTURES / "freeradius_detail").read_text()
    with store.connect() as connection:
        dump = " ".join(
            str(row)
            for table in ("person", "encounter", "wifi_session")
            for row in connection.execute(text(f"select * from {table}"))  # noqa: S608
        )
    assert "999" in raw_fhir
    for nhs_number in {"9990000018", "9990000026"} & set(raw_fhir.split('"')):
        assert nhs_number not in dump
    for mac_line in (line for line in raw_radius.splitlines() if "Calling-Station-Id" in line):
        mac = mac_line.split("=")[1].strip().strip('"')
        assert mac not in dump
        assert mac.lower().replace("-", ":") not in dump


def test_the_same_nhs_number_gets_the_same_pseudonym_at_every_node(tmp_path):
    one = Pseudonymiser(trust_key=b"k" * 32, wifi_key_dir=tmp_path / "a")
    two = Pseudonymiser(trust_key=b"k" * 32, wifi_key_dir=tmp_path / "b")
    other_trust = Pseudonymiser(trust_key=b"x" * 32, wifi_key_dir=tmp_path / "c")
    assert one.person("9990000018") == two.person("9990000018")
    assert one.person("9990000018") != other_trust.person("9990000018")


def test_device_tokens_do_not_link_across_days(tmp_path):
    from datetime import UTC, datetime

    p = Pseudonymiser(trust_key=b"k" * 32, wifi_key_dir=tmp_path)
    monday = datetime(2026, 10, 5, 9, tzinfo=UTC)
    tuesday = datetime(2026, 10, 6, 9, tzinfo=UTC)
    assert p.device("aa:bb:cc:dd:ee:ff", monday) == p.device("aa:bb:cc:dd:ee:ff", monday)
    assert p.device("aa:bb:cc:dd:ee:ff", monday) != p.device("aa:bb:cc:dd:ee:ff", tuesday)


def test_a_format_is_loaded_only_at_a_node_that_holds_such_data():
    with pytest.raises(
        SettingsError, match="format 'fhir-bundle' holds health data, not 'council'"
    ):
        source_format("fhir-bundle", node_id="council")
    with pytest.raises(
        SettingsError,
        match=re.escape(
            "unknown ingest format 'hl7v2'; known formats: access-point-inventory, "
            "chirpstack-uplinks, cld-csv, fhir-bundle, freeradius-detail, hclic-xml, "
            "meraki-scanning, sensor-inventory, things-stack-uplinks"
        ),
    ):
        source_format("hl7v2", node_id="health")


def test_a_file_that_is_not_utf8_is_quarantined_whole_with_the_byte_named(
    store, pseudonymiser, tmp_path
):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("device_id,model\ncaf\xe9,x\n".encode("latin-1"))
    report = ingest_file(
        store, bad, source_format("sensor-inventory", node_id="council"), pseudonymiser
    )
    assert (report.status, report.records_quarantined) == ("failed", 1)
    with store.connect() as connection:
        (reason,) = connection.execute(select(QuarantinedRecord.reason)).scalars().all()
    assert "UTF-8" in reason


def test_every_ingest_format_has_exactly_one_adapter_reader():
    from datatrust import adapters
    from datatrust.ingest import FORMATS

    assert set(FORMATS) == set(adapters.FORMATS)
