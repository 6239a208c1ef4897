"""``datatrust ingest`` and ``datatrust quarantine`` as an operator runs them."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from datatrust.ingest import FORMATS
from tests.ingest.test_mqtt import INVENTORY, uplink


def datatrust(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datatrust", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )


def ndjson(*numbers: int) -> str:
    return "".join(json.dumps(uplink("pc-live-01", n, n)) + "\n" for n in numbers)


def count(data_dir: Path, table: str) -> int:
    with sqlite3.connect(data_dir / "council.db") as db:
        return db.execute(f"select count(*) from {table}").fetchone()[0]  # noqa: S608


def prepared(tmp_path: Path) -> Path:
    data_dir = tmp_path / "trust"
    inventory = tmp_path / "inventory.csv"
    inventory.write_text(INVENTORY, encoding="utf-8")
    result = datatrust(
        "ingest", "sensor-inventory", str(inventory), "--node", "council", data_dir=data_dir
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return data_dir


def test_ingest_help_lists_every_format_and_the_mqtt_mode(tmp_path):
    result = datatrust("ingest", "--help", data_dir=tmp_path)
    assert result.returncode == 0
    for name in FORMATS:
        assert name in result.stdout, name
    assert "mqtt (council): subscribe to --topic at --broker" in result.stdout


def test_a_directory_is_ingested_file_by_file_in_name_order_with_progress_and_a_summary(tmp_path):
    data_dir = prepared(tmp_path)
    folder = tmp_path / "uplinks"
    folder.mkdir()
    (folder / "b.ndjson").write_text(ndjson(3, 4), encoding="utf-8")
    (folder / "a.ndjson").write_text(ndjson(1, 2), encoding="utf-8")
    (folder / ".hidden").write_text("not an uplink", encoding="utf-8")
    result = datatrust(
        "ingest", "things-stack-uplinks", str(folder), "--node", "council", data_dir=data_dir
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "things-stack-uplinks → council" in out
    assert "2/2" in out
    assert "4 records" in out
    assert "0 quarantined" in out
    assert "ingest summary" in out
    assert out.index("a.ndjson") < out.index("b.ndjson")
    assert "2 file(s)" in out
    assert count(data_dir, "reading") == 8

    again = datatrust(
        "ingest",
        "things-stack-uplinks",
        str(folder / "a.ndjson"),
        "--node",
        "council",
        data_dir=data_dir,
    )
    assert again.returncode == 0
    assert "skipped" in again.stdout
    assert count(data_dir, "reading") == 8


def test_a_bad_record_is_listed_in_quarantine_and_replay_runs(tmp_path):
    data_dir = prepared(tmp_path)
    source = tmp_path / "uplinks.ndjson"
    source.write_text(ndjson(1) + '{"end_device_ids": \n' + ndjson(2), encoding="utf-8")
    result = datatrust(
        "ingest", "things-stack-uplinks", str(source), "--node", "council", data_dir=data_dir
    )
    assert result.returncode == 1
    assert "1 quarantined" in result.stdout
    assert count(data_dir, "reading") == 4

    listed = datatrust("quarantine", "list", "--node", "council", data_dir=data_dir)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    lines = [line for line in listed.stdout.splitlines() if "uplinks.ndjson:2" in line]
    assert len(lines) == 1
    assert "things-stack-uplinks" in lines[0]
    assert "council" in lines[0]
    everywhere = datatrust("quarantine", "list", data_dir=data_dir)
    assert "uplinks.ndjson:2" in everywhere.stdout

    replayed = datatrust(
        "quarantine", "replay", "--node", "council", "--id", "1", data_dir=data_dir
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "council: 0 replayed and loaded, 1 still quarantined" in replayed.stdout
    assert count(data_dir, "reading") == 4


def test_ingest_without_a_path_or_of_an_empty_directory_says_what_is_missing(tmp_path):
    data_dir = prepared(tmp_path)
    missing = datatrust("ingest", "things-stack-uplinks", "--node", "council", data_dir=data_dir)
    assert missing.returncode == 2
    assert "error: ingest things-stack-uplinks needs at least one PATH (a file or directory)" in (
        missing.stderr
    )
    (tmp_path / "empty").mkdir()
    empty = datatrust(
        "ingest",
        "things-stack-uplinks",
        str(tmp_path / "empty"),
        "--node",
        "council",
        data_dir=data_dir,
    )
    assert empty.returncode == 2
    assert f"error: directory {tmp_path / 'empty'} holds no files to ingest" in " ".join(
        empty.stderr.split()
    )
