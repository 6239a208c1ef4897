"""The registry of source formats: one name per format, one reader per name.

Ingest and the demo look readers up here, so adding a format is adding one line. Every
reader is called ``reader(text_or_bytes, source, *, now=None)``: ``now`` (the time of
reading, passed in because adapters never read a clock) turns on the "not in the future"
checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ._chirpstack import read_chirpstack_uplinks
from ._cld import read_cld_csv
from ._common import Output
from ._fhir import read_fhir_bundle
from ._freeradius import read_freeradius_detail
from ._hclic import read_hclic_xml
from ._inventory import read_access_point_inventory_csv, read_sensor_inventory_csv
from ._meraki import read_meraki_scanning
from ._things_stack import read_things_stack_uplinks

__all__ = ["FORMATS", "Reader"]

Reader = Callable[[str | bytes, str], Iterator[Output]]

FORMATS: dict[str, Reader] = {
    "access-point-inventory": read_access_point_inventory_csv,
    "chirpstack-uplinks": read_chirpstack_uplinks,
    "cld-csv": read_cld_csv,
    "fhir-bundle": read_fhir_bundle,
    "freeradius-detail": read_freeradius_detail,
    "hclic-xml": read_hclic_xml,
    "meraki-scanning": read_meraki_scanning,
    "sensor-inventory": read_sensor_inventory_csv,
    "things-stack-uplinks": read_things_stack_uplinks,
}
