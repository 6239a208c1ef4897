"""The registry of source formats: one name per format, one reader per name.

Ingest and the demo look readers up here, so adding a format is adding one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ._cld import read_cld_csv
from ._common import Output
from ._fhir import read_fhir_bundle
from ._freeradius import read_freeradius_detail
from ._inventory import read_access_point_inventory_csv, read_sensor_inventory_csv
from ._things_stack import read_things_stack_uplinks

__all__ = ["FORMATS", "Reader"]

Reader = Callable[[str | bytes, str], Iterator[Output]]

FORMATS: dict[str, Reader] = {
    "access-point-inventory": read_access_point_inventory_csv,
    "cld-csv": read_cld_csv,
    "fhir-bundle": read_fhir_bundle,
    "freeradius-detail": read_freeradius_detail,
    "sensor-inventory": read_sensor_inventory_csv,
    "things-stack-uplinks": read_things_stack_uplinks,
}
