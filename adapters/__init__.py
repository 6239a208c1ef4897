"""Readers for each agency's source formats, with no I/O of their own.

An adapter takes the bytes or text a real source emits (The Things Stack and ChirpStack
uplinks, FreeRADIUS accounting detail files, Meraki Scanning API presence feeds, HL7 FHIR
R4 bundles, the adult social care Client Level Data return, the H-CLIC homelessness
return) and turns them into canonical records, or into a located error for each record it
cannot read. Adapters never touch a database, the network or a clock, so they can
be tested on captured traffic alone and reused by every ingest source.
"""

from ._chirpstack import read_chirpstack_uplinks
from ._cld import CLD_COLUMNS, LOCAL_LSOA_COLUMN, read_cld_csv
from ._codecs import CODECS, MEASUREMENT_UNITS, Codec, decode_am308, decode_vs350
from ._common import Output
from ._fhir import (
    LSOA_EXTENSION_URL,
    NHS_NUMBER_SYSTEM,
    SKIPPED_RESOURCE_TYPES,
    read_fhir_bundle,
)
from ._formats import FORMATS, Reader
from ._freeradius import read_freeradius_detail
from ._hclic import read_hclic_xml
from ._inventory import (
    ACCESS_POINT_COLUMNS,
    SENSOR_COLUMNS,
    read_access_point_inventory_csv,
    read_sensor_inventory_csv,
)
from ._meraki import read_meraki_scanning
from ._mqtt import read_mqtt_uplink
from ._records import (
    AccessPointDevice,
    CareEvent,
    Condition,
    Encounter,
    HousingCase,
    InvalidField,
    Observation,
    Patient,
    PresenceObservation,
    Record,
    SensorDevice,
    SensorUplink,
    WifiAccounting,
    is_valid_nhs_number,
    normalise_mac,
)
from ._redact import redact
from ._things_stack import read_things_stack_uplinks
from ._time import LOCAL_ZONE, parse_timestamp

__all__ = [
    "ACCESS_POINT_COLUMNS",
    "CLD_COLUMNS",
    "CODECS",
    "FORMATS",
    "LOCAL_LSOA_COLUMN",
    "LOCAL_ZONE",
    "LSOA_EXTENSION_URL",
    "MEASUREMENT_UNITS",
    "NHS_NUMBER_SYSTEM",
    "SENSOR_COLUMNS",
    "SKIPPED_RESOURCE_TYPES",
    "AccessPointDevice",
    "CareEvent",
    "Codec",
    "Condition",
    "Encounter",
    "HousingCase",
    "InvalidField",
    "Observation",
    "Output",
    "Patient",
    "PresenceObservation",
    "Reader",
    "Record",
    "SensorDevice",
    "SensorUplink",
    "WifiAccounting",
    "decode_am308",
    "decode_vs350",
    "is_valid_nhs_number",
    "normalise_mac",
    "parse_timestamp",
    "read_access_point_inventory_csv",
    "read_chirpstack_uplinks",
    "read_cld_csv",
    "read_fhir_bundle",
    "read_freeradius_detail",
    "read_hclic_xml",
    "read_meraki_scanning",
    "read_mqtt_uplink",
    "read_sensor_inventory_csv",
    "read_things_stack_uplinks",
    "redact",
]
