"""Ingest throughput: demo sources into a node store, against parsing them alone.

python bench/ingest.py [--database-url URL]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from datatrust import _prepare
from datatrust.ingest import FORMATS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", help="default: a SQLite file per node in a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        sources = _prepare.write_demo_files(data_dir)
        print(
            f"{'node':<12} {'records':>8} {'parse s':>8} {'ingest s':>9} {'rec/s':>9} {'ratio':>6}"
        )
        for node, files in sources.items():
            started = time.perf_counter()
            records = 0
            for format_name, path in files:
                records += sum(1 for _ in FORMATS[format_name].read(path.read_text(), path.name))
            parse_seconds = time.perf_counter() - started

            url = args.database_url or f"sqlite:///{data_dir / node}.db"
            started = time.perf_counter()
            _prepare.prepare_demo_node(data_dir, node, url, files)
            ingest_seconds = time.perf_counter() - started
            print(
                f"{node:<12} {records:>8} {parse_seconds:>8.2f} {ingest_seconds:>9.2f} "
                f"{records / ingest_seconds:>9.0f} {ingest_seconds / parse_seconds:>5.1f}x"
            )


if __name__ == "__main__":
    main()
