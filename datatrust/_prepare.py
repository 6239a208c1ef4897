"""Preparing a local trust's nodes before they start: stores, keys, demo data.

Demo data is written as files in the sources' real formats and loaded through the same
ingest path as any agency's files (adapters -> ingest -> store), never into tables
directly. Loading is idempotent per file, so preparing twice adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datatrust.demo import DemoSources, write_demo_sources
from datatrust.ingest import IngestReport, Pseudonymiser, ingest_file, source_format
from datatrust.store import create_store_engine, migrate
from datatrust.trust import load_or_create_key

__all__ = ["NodePreparation", "node_pseudonymiser", "prepare_demo_node", "write_demo_files"]


@dataclass(frozen=True, slots=True)
class NodePreparation:
    node_id: str
    reports: tuple[IngestReport, ...]


def node_pseudonymiser(data_dir: Path, node_id: str) -> Pseudonymiser:
    """The pseudonymiser of ``node_id``: the trust-wide key and the node's own WiFi keys."""
    keys = data_dir / "keys"
    return Pseudonymiser(
        trust_key=load_or_create_key(keys / "pseudonym.key"),
        wifi_key_dir=keys / node_id,
    )


def write_demo_files(data_dir: Path) -> DemoSources:
    """The demo sources under ``data_dir/demo``, written once per generator version.

    Generating them takes seconds and gives the same bytes every time, so ``up`` writes
    them on the first start and afterwards reuses them while ``demo/sources.json`` names
    this generator (a hash of its source) and every file is still there; a new release
    of the generator, or a missing file, writes them all again.
    """
    directory = data_dir / "demo"
    manifest = directory / "sources.json"
    version = _generator_version()
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
        if recorded["generator"] == version:
            sources = {
                node: [(name, directory / path) for name, path in files]
                for node, files in recorded["sources"].items()
            }
            if all(path.is_file() for files in sources.values() for _, path in files):
                return sources
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no manifest, or not ours: write the sources
    sources = write_demo_sources(directory)
    listing = {
        node: [(name, path.relative_to(directory).as_posix()) for name, path in files]
        for node, files in sources.items()
    }
    temporary = manifest.with_suffix(".tmp")
    temporary.write_text(json.dumps({"generator": version, "sources": listing}), "utf-8")
    os.replace(temporary, manifest)
    return sources


def _generator_version() -> str:
    """A hash of the demo generator's own source files: what the sources depend on."""
    from datatrust import demo

    digest = hashlib.sha256()
    for path in sorted(Path(demo.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


CONSENTING_NODES = ("health", "social-care")
"""Nodes whose demo people are asked for research consent."""


def prepare_demo_node(
    data_dir: Path,
    node_id: str,
    database_url: str,
    sources: list[tuple[str, Path]],
    *,
    on_progress: Callable[[int], None] = lambda records: None,
) -> NodePreparation:
    """Migrate the node's store and ingest its demo sources (skipping ones already loaded)."""
    engine = create_store_engine(database_url)
    try:
        migrate(engine)
        pseudonymiser = node_pseudonymiser(data_dir, node_id)
        reports = tuple(
            ingest_file(
                engine,
                path,
                source_format(format_name, node_id=node_id),
                pseudonymiser,
                on_progress=on_progress,
            )
            for format_name, path in sources
        )
        if node_id in CONSENTING_NODES:
            from datatrust.demo._consents import seed_demo_consents
            from datatrust.trust.identity._accounts import DEMO_CITIZEN_NHS_NUMBER

            seed_demo_consents(engine, node_id, pseudonymiser.person(DEMO_CITIZEN_NHS_NUMBER))
    finally:
        engine.dispose()
    return NodePreparation(node_id, reports)
