"""Pipelines that take adapter output into a node's store.

Ingest owns everything between a parsed record and a committed row: pseudonymisation at
the door (NHS numbers and MAC addresses never reach a table raw), validation, idempotent
batched loading inside transactions, and quarantine of bad records with their reasons so
nothing is ever silently dropped. Files, HTTP webhooks and MQTT subscriptions are its
sources.
"""

from datatrust.ingest._formats import FORMATS, SourceFormat, source_format
from datatrust.ingest._load import write_rows
from datatrust.ingest._mqtt import MqttIngest, MqttTotals, broker_address, mqtt_client_id
from datatrust.ingest._pipeline import IngestReport, ingest_file, load_items
from datatrust.ingest._pseudonymise import Pseudonymiser
from datatrust.ingest._quarantine import (
    QuarantineEntry,
    ReplayReport,
    list_quarantine,
)
from datatrust.ingest._replay import replay_quarantine
from datatrust.ingest._rows import rows_of
from datatrust.ingest._webhooks import SECRET_HEADER, webhook_routes, webhook_secret

__all__ = [
    "FORMATS",
    "SECRET_HEADER",
    "IngestReport",
    "MqttIngest",
    "MqttTotals",
    "Pseudonymiser",
    "QuarantineEntry",
    "ReplayReport",
    "SourceFormat",
    "broker_address",
    "ingest_file",
    "list_quarantine",
    "load_items",
    "mqtt_client_id",
    "replay_quarantine",
    "rows_of",
    "source_format",
    "webhook_routes",
    "webhook_secret",
    "write_rows",
]
