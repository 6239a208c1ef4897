"""Ingest throughput, end to end, against a raw bulk insert of the same rows.

python bench/ingest.py [--months 8] [--sessions 30000] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

For sensor uplinks (the demo's The Things Stack NDJSON, repeated for earlier months so
there are more than 500,000 readings) and RADIUS accounting records (a FreeRADIUS detail
file of Start, Interim-Update and Stop records), it prints records and rows per second
through the whole pipeline (read, validate, pseudonymise, load, roll up: ``ingest_file``)
into SQLite and into a throwaway PostgreSQL database it creates and drops. Against that,
in the same run, a raw bulk insert of the same canonical rows, already built in memory:
PostgreSQL's binary COPY from Python (SQLite: one executemany) into a plain temporary
table of the same columns (no partitions, no keys, no indexes: the "raw COPY" of issue 4)
and into the real, empty, partitioned and indexed table. The ratios are end-to-end time
over raw time.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import text

from datatrust import _prepare
from datatrust.ingest import Pseudonymiser, ingest_file, rows_of, source_format
from datatrust.store import create_store_engine, ensure_month_partitions, migrate


def uplinks_file(folder: Path, months: int) -> Path:
    demo = _prepare.write_demo_files(folder)
    (_, source) = next(f for f in demo["council"] if f[0] == "things-stack-uplinks")
    text = source.read_text()
    path = folder / "uplinks-scaled.ndjson"
    with path.open("w") as out:
        for back in range(months):  # October, then September, August, ...
            out.write(text.replace("2026-10-0", f"2026-{10 - back:02d}-0"))
    return path


def inventory_files(folder: Path) -> tuple[Path, Path]:
    demo = dict(_prepare.write_demo_files(folder)["council"])
    return demo["sensor-inventory"], demo["access-point-inventory"]


def detail_file(folder: Path, sessions: int, ap_inventory: Path) -> Path:
    """``sessions`` sessions of Start, Interim-Update and Stop, at the inventory's APs."""
    aps = [line.split(",")[0] for line in ap_inventory.read_text().splitlines()[1:]]
    start = datetime(2026, 9, 1, 7, tzinfo=UTC)
    path = folder / "detail-scaled"
    with path.open("w") as out:
        for n in range(sessions):
            began = start + timedelta(seconds=37 * n)
            mac = "-".join(f"{b:02X}" for b in (0x02, n >> 16 & 255, n >> 8 & 255, n & 255, 7, 9))
            for status, after in (("Start", 0), ("Interim-Update", 600), ("Stop", 900)):
                at = began + timedelta(seconds=after)
                out.write(
                    f"{at:%a %b %d %H:%M:%S %Y}\n"
                    f"\tAcct-Status-Type = {status}\n"
                    f'\tNAS-Identifier = "cov-ap-{n % len(aps):02d}"\n'
                    f'\tCalled-Station-Id = "{aps[n % len(aps)]}:CoventryFreeWiFi"\n'
                    f'\tCalling-Station-Id = "{mac}"\n'
                    f'\tAcct-Session-Id = "S{n:015X}"\n'
                    f'\tAcct-Unique-Session-Id = "u{n:015x}"\n'
                    f'\tEvent-Timestamp = "{at:%b %d %Y %H:%M:%S} UTC"\n'
                    + (
                        f"\tAcct-Session-Time = {after}\n\tAcct-Input-Octets = {after * 99}\n"
                        f"\tAcct-Output-Octets = {after * 301}\n"
                        if after
                        else ""
                    )
                    + "\n"
                )
    return path


class Databases:
    """Fresh, migrated stores: SQLite files in a folder, PostgreSQL throwaway databases."""

    def __init__(self, folder: Path, admin: str | None) -> None:
        self.folder, self.admin, self.made = folder, admin, []

    def fresh(self, kind: str):
        if kind == "sqlite":
            url = f"sqlite:///{self.folder / f'{secrets.token_hex(4)}.db'}"
        else:
            name = f"datatrust_bench_{secrets.token_hex(4)}"
            with psycopg.connect(self.admin, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            self.made.append(name)
            url = f"postgresql+psycopg://{self.admin.split('://', 1)[1].rsplit('/', 1)[0]}/{name}"
        engine = create_store_engine(url)
        migrate(engine)
        return engine

    def drop_all(self) -> None:
        if self.made:
            with psycopg.connect(self.admin, autocommit=True) as admin:
                for name in self.made:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def end_to_end(engine, inventories, fmt: str, path: Path, keys: Path) -> float:
    pseudonymiser = Pseudonymiser(trust_key=b"b" * 32, wifi_key_dir=keys)
    council = "council"
    for inv_fmt, inv in inventories:
        ingest_file(engine, inv, source_format(inv_fmt, node_id=council), pseudonymiser)
    started = time.perf_counter()
    report = ingest_file(engine, path, source_format(fmt, node_id=council), pseudonymiser)
    seconds = time.perf_counter() - started
    assert report.records_quarantined == 0, report
    return seconds


def canonical_rows(fmt: str, path: Path, keys: Path) -> tuple[str, list[dict], int]:
    records = list(source_format(fmt, node_id="council").read(path.read_text(), path.name))
    rows = rows_of(records, Pseudonymiser(trust_key=b"b" * 32, wifi_key_dir=keys))
    table = "reading" if "reading" in rows else "wifi_session"
    return table, rows[table], len(records)


def raw_bulk(engine, table: str, rows: list[dict], *, plain: bool) -> float:
    """Seconds to bulk-insert ``rows`` into ``table`` (``plain``: a keyless temp copy)."""
    columns = list(rows[0])
    names = ", ".join(columns)
    with engine.begin() as connection:
        target = table
        if plain:
            target = f"plain_{table}"
            connection.exec_driver_sql(
                f"CREATE TEMP TABLE {target} AS SELECT {names} FROM {table} WHERE 1 = 0"  # noqa: S608 (our own names)
            )
        elif table == "reading":
            ensure_month_partitions(connection, "reading", {r["received_at"] for r in rows})
        if engine.dialect.name == "postgresql":
            types = dict(
                connection.execute(
                    text(
                        "SELECT attname, atttypid FROM pg_attribute "
                        "WHERE attrelid = CAST(:t AS regclass)"
                    ),
                    {"t": table},
                ).all()
            )
    values = [tuple(row[c] for c in columns) for row in rows]
    started = time.perf_counter()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            cursor = connection.connection.driver_connection.cursor()
            with cursor.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([types[c] for c in columns])
                for row in values:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in columns)
            connection.connection.driver_connection.executemany(
                f"INSERT INTO {target} ({names}) VALUES ({marks})",  # noqa: S608 (our own names)
                values,
            )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--months", type=int, default=8, help="months of demo uplinks")
    parser.add_argument("--sessions", type=int, default=30_000, help="RADIUS sessions (x3)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        sensors, aps = inventory_files(folder)
        inventories = [("sensor-inventory", sensors), ("access-point-inventory", aps)]
        cases = [
            ("sensor uplinks", "things-stack-uplinks", uplinks_file(folder, args.months)),
            ("RADIUS accounting", "freeradius-detail", detail_file(folder, args.sessions, aps)),
        ]
        dbs = Databases(folder, args.postgres)
        kinds = ["postgresql"] if args.skip_sqlite else ["sqlite", "postgresql"]
        print(
            f"{'source':<18} {'database':<10} {'records':>8} {'rows':>8} "
            f"{'e2e rec/s':>10} {'e2e rows/s':>10} {'plain rows/s':>12} {'table rows/s':>12} "
            f"{'x plain':>7} {'x table':>7}"
        )
        try:
            for label, fmt, path in cases:
                table, rows, records = canonical_rows(fmt, path, folder / "keys-raw")
                for kind in kinds:
                    e2e = end_to_end(
                        dbs.fresh(kind), inventories, fmt, path, folder / f"keys-{kind}"
                    )
                    plain = raw_bulk(dbs.fresh(kind), table, rows, plain=True)
                    real = raw_bulk(dbs.fresh(kind), table, rows, plain=False)
                    print(
                        f"{label:<18} {kind:<10} {records:>8} {len(rows):>8} "
                        f"{records / e2e:>10.0f} {len(rows) / e2e:>10.0f} "
                        f"{len(rows) / plain:>12.0f} {len(rows) / real:>12.0f} "
                        f"{e2e / plain:>6.1f}x {e2e / real:>6.1f}x",
                        flush=True,
                    )
        finally:
            dbs.drop_all()
    print(
        "rows: readings (one per measured quantity) or WiFi sessions (one per Acct-Unique-"
        "Session-Id). e2e: ingest_file, parse to commit (and ANALYZE on SQLite). plain: "
        "bulk insert into a temp table of the same columns, no keys or indexes. table: "
        "into the real empty table. x: e2e time over raw time. Target (issue 4): "
        "50,000 readings/s e2e into PostgreSQL, within 3x of plain."
    )


if __name__ == "__main__":
    main()
