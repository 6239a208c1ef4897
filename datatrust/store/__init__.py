"""The node store: one agency node's database, its tables, engines and migrations.

It owns the node's canonical records (sensors and readings, WiFi sessions, people,
encounters, care episodes), the trust's own records kept at every node (purposes,
agreements, consents, the hash-chained audit ledger) and the ingest bookkeeping (batches
and quarantined records). The same code runs on SQLite and PostgreSQL, chosen by the store
URL given to :func:`create_store_engine`; a node runs :func:`migrate` when it starts, and
:func:`check_ready` tells a health check whether the database is reachable and current.
"""

from datatrust.store._consent import (
    CITIZEN_OPT_OUT_ACTIONS,
    CONSENT_STATES,
    CitizenOptOut,
    CitizenOptOutEvent,
    Consent,
    ConsentEvent,
    NationalOptOut,
    OptOutListLoad,
)
from datatrust.store._engine import (
    BEGIN_IMMEDIATE,
    create_store_engine,
    masked_url,
    refresh_statistics,
    session_scope,
    store_unavailable,
)
from datatrust.store._migrate import alembic_config, check_ready, migrate, schema_is_current
from datatrust.store._models import (
    STORE_METADATA,
    AccessPoint,
    Agreement,
    AuditEvent,
    CareEpisode,
    Encounter,
    IngestBatch,
    Person,
    Purpose,
    QuarantinedRecord,
    Reading,
    Sensor,
    WifiSession,
)
from datatrust.store._partitions import ensure_month_partitions, is_partition
from datatrust.store._rollups import ReadingHourly, WifiDaily
from datatrust.store._sources import Condition, HousingCase, Observation, PresenceObservation
from datatrust.store._types import UTCDateTime

__all__ = [
    "BEGIN_IMMEDIATE",
    "CITIZEN_OPT_OUT_ACTIONS",
    "CONSENT_STATES",
    "STORE_METADATA",
    "AccessPoint",
    "Agreement",
    "AuditEvent",
    "CareEpisode",
    "CitizenOptOut",
    "CitizenOptOutEvent",
    "Condition",
    "Consent",
    "ConsentEvent",
    "Encounter",
    "HousingCase",
    "IngestBatch",
    "NationalOptOut",
    "Observation",
    "OptOutListLoad",
    "Person",
    "PresenceObservation",
    "Purpose",
    "QuarantinedRecord",
    "Reading",
    "ReadingHourly",
    "Sensor",
    "UTCDateTime",
    "WifiDaily",
    "WifiSession",
    "alembic_config",
    "check_ready",
    "create_store_engine",
    "ensure_month_partitions",
    "is_partition",
    "masked_url",
    "migrate",
    "refresh_statistics",
    "schema_is_current",
    "session_scope",
    "store_unavailable",
]
