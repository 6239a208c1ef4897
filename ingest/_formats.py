"""The source formats a node can ingest, declared once as data.

Each entry names the adapter that reads the format and the node kinds that hold such data;
``datatrust ingest --help`` and the docs list the formats from here. Adding a format is one
entry, not a change to the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from datatrust import adapters
from datatrust.errors import SettingsError

__all__ = ["FORMATS", "SourceFormat", "source_format"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceFormat:
    name: str
    title: str
    read: Callable[[str, str], Iterable[object]]
    nodes: tuple[str, ...]


FORMATS: dict[str, SourceFormat] = {
    f.name: f
    for f in (
        SourceFormat(
            name="sensor-inventory",
            title="Sensor asset register (CSV: device_id, model, kind, lsoa_code, lat, lon)",
            read=adapters.read_sensor_inventory_csv,
            nodes=("council",),
        ),
        SourceFormat(
            name="things-stack-uplinks",
            title="The Things Stack v3 uplink messages (NDJSON or a JSON array)",
            read=adapters.read_things_stack_uplinks,
            nodes=("council",),
        ),
        SourceFormat(
            name="access-point-inventory",
            title="WiFi access point register (CSV: ap_mac, ssid, nas_identifier, lsoa_code)",
            read=adapters.read_access_point_inventory_csv,
            nodes=("council",),
        ),
        SourceFormat(
            name="freeradius-detail",
            title="FreeRADIUS accounting detail file (RFC 2866 attributes)",
            read=adapters.read_freeradius_detail,
            nodes=("council",),
        ),
        SourceFormat(
            name="fhir-bundle",
            title="HL7 FHIR R4 Bundle, UK Core (Patient, Encounter)",
            read=adapters.read_fhir_bundle,
            nodes=("health",),
        ),
        SourceFormat(
            name="cld-csv",
            title="Adult Social Care Client Level Data return (CSV)",
            read=adapters.read_cld_csv,
            nodes=("social-care",),
        ),
    )
}


def source_format(name: str, *, node_id: str) -> SourceFormat:
    """The format called ``name``, checked to be one node ``node_id`` holds."""
    try:
        found = FORMATS[name]
    except KeyError:
        raise SettingsError(
            f"unknown ingest format {name!r}; known formats: {', '.join(sorted(FORMATS))}"
        ) from None
    if node_id not in found.nodes:
        raise SettingsError(
            f"format {name!r} holds {', '.join(found.nodes)} data, not {node_id!r} data: "
            "load it at the node of the agency that controls it"
        )
    return found
