"""Pipelines that take adapter output into a node's store.

Ingest owns everything between a parsed record and a committed row: pseudonymisation at
the door (NHS numbers and MAC addresses never reach a table raw), validation, idempotent
batched loading inside transactions, and quarantine of bad records with their reasons so
nothing is ever silently dropped. Files, HTTP webhooks and MQTT subscriptions are its
sources.
"""

from datatrust.ingest._formats import FORMATS, SourceFormat, source_format
from datatrust.ingest._load import write_rows
from datatrust.ingest._pipeline import IngestReport, ingest_file, load_items
from datatrust.ingest._pseudonymise import Pseudonymiser
from datatrust.ingest._rows import rows_of

__all__ = [
    "FORMATS",
    "IngestReport",
    "Pseudonymiser",
    "SourceFormat",
    "ingest_file",
    "load_items",
    "rows_of",
    "source_format",
    "write_rows",
]
