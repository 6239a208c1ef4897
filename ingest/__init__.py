"""Pipelines that take adapter output into a node's store.

Ingest owns everything between a parsed record and a committed row: pseudonymisation at
the door (NHS numbers and MAC addresses never reach a table raw), validation, idempotent
batched loading inside transactions, and quarantine of bad records with their reasons so
nothing is ever silently dropped. Files, HTTP webhooks and MQTT subscriptions are its
sources.
"""

__all__: list[str] = []
