"""``kill -9`` during a file ingest: the re-run resumes, and the store is as a clean load's.

A file of uplinks larger than one chunk is loaded by ``datatrust ingest`` and killed with
SIGKILL once some chunks have committed and before the last. Running the same command
again resumes the unfinished batch: every table ends exactly as a clean, uninterrupted
load of the same file into a copy of the same store leaves it (same readings, same
roll-ups), with nothing duplicated and nothing quarantined.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from datatrust.ingest._pipeline import CHUNK_RECORDS
from datatrust.store import create_store_engine
from tests.ingest.test_loading import _dump
from tests.ingest.test_mqtt import DEVICES, uplink
from tests.test_cli_ingest import count, datatrust, prepared

UPLINKS = CHUNK_RECORDS * 2  # two chunks: one committed, then the kill, then the rest
READINGS_PER_UPLINK = 2  # people_in and people_out


def ingest_command(source: Path, data_dir: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "datatrust", "ingest", "things-stack-uplinks", str(source)),
        *("--node", "council", "--data-dir", str(data_dir)),
    ]


def unfinished_batches(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "council.db") as db:
        return db.execute("SELECT count(*) FROM ingest_batch WHERE finished_at IS NULL").fetchone()[
            0
        ]


def test_a_killed_file_ingest_resumes_to_exactly_what_a_clean_load_gives(tmp_path):
    data_dir = prepared(tmp_path)
    clean_dir = tmp_path / "clean"
    shutil.copytree(data_dir, clean_dir)  # same keys, same inventory: a twin store
    source = tmp_path / "uplinks.ndjson"
    with source.open("w", encoding="utf-8") as handle:
        for n in range(UPLINKS):
            handle.write(json.dumps(uplink(DEVICES[n % 2], n, n % 500)) + "\n")

    # The clean load runs alongside, into the twin store: it shares nothing with the other.
    clean = subprocess.Popen(
        ingest_command(source, clean_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    loading = subprocess.Popen(
        ingest_command(source, data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while count(data_dir, "reading") == 0 and loading.poll() is None:
            assert time.monotonic() < deadline, "no chunk committed within 60 s"
            time.sleep(0.02)
    finally:
        loading.send_signal(signal.SIGKILL)
        loading.wait(10)
    assert loading.returncode == -signal.SIGKILL, "the load finished before it could be killed"
    at_kill = count(data_dir, "reading")
    assert 0 < at_kill < UPLINKS * READINGS_PER_UPLINK
    assert unfinished_batches(data_dir) == 1

    resumed = datatrust(
        "ingest", "things-stack-uplinks", str(source), "--node", "council", data_dir=data_dir
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "skipped" not in resumed.stdout
    clean_output, _ = clean.communicate(timeout=120)
    assert clean.returncode == 0, clean_output

    assert count(data_dir, "reading") == UPLINKS * READINGS_PER_UPLINK
    assert count(data_dir, "reading") == count(clean_dir, "reading")
    assert count(data_dir, "quarantined_record") == 0
    assert unfinished_batches(data_dir) == 0
    engines = [create_store_engine(f"sqlite:///{d / 'council.db'}") for d in (data_dir, clean_dir)]
    try:
        resumed_tables, clean_tables = (_dump(e, skip=("ingest_batch",)) for e in engines)
    finally:
        for engine in engines:
            engine.dispose()
    assert resumed_tables == clean_tables
