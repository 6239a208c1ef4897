"""Preparing a local trust's nodes before they start: stores, keys, demo data.

Demo data is written as files in the sources' real formats and loaded through the same
ingest path as any agency's files (adapters -> ingest -> store), never into tables
directly. Loading is idempotent per file, so preparing twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from datatrust.demo import write_demo_sources
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


def write_demo_files(data_dir: Path):
    """Write (or rewrite, byte-identically) the demo sources under ``data_dir/demo``."""
    return write_demo_sources(data_dir / "demo")


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
