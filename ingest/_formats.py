"""The source formats a node can ingest, declared once as data.

Each entry says which node kinds hold the format's data and how one record sits in a file;
the reader itself comes from the adapters' registry under the same name.
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
    nodes: tuple[str, ...]
    raw_unit: str | None = None  # how one record sits in a file: line, csv-row, block

    @property
    def read(self) -> Callable[[str, str], Iterable[object]]:
        """The adapter's reader, from the adapters' own registry (one reader per name)."""
        return adapters.FORMATS[self.name]


FORMATS: dict[str, SourceFormat] = {
    f.name: f
    for f in (
        SourceFormat(
            name="sensor-inventory",
            title="Sensor asset register (CSV: device_id, model, kind, lsoa_code, lat, lon)",
            nodes=("council",),
            raw_unit="csv-row",
        ),
        SourceFormat(
            name="things-stack-uplinks",
            title="The Things Stack v3 uplink messages (NDJSON or a JSON array)",
            nodes=("council",),
            raw_unit="line",
        ),
        SourceFormat(
            name="chirpstack-uplinks",
            title="ChirpStack v4 uplink events (JSON marshaler; NDJSON or a JSON array)",
            nodes=("council",),
            raw_unit="line",
        ),
        SourceFormat(
            name="access-point-inventory",
            title="WiFi access point register (CSV: ap_mac, ssid, nas_identifier, lsoa_code)",
            nodes=("council",),
            raw_unit="csv-row",
        ),
        SourceFormat(
            name="freeradius-detail",
            title="FreeRADIUS accounting detail file (RFC 2866 attributes)",
            nodes=("council",),
            raw_unit="block",
        ),
        SourceFormat(
            name="meraki-scanning",
            title="Cisco Meraki Scanning API v3 presence feed (WiFi and BLE observations)",
            nodes=("council",),
        ),
        SourceFormat(
            name="hclic-xml",
            title="H-CLIC homelessness case-level return (XML)",
            nodes=("council",),
        ),
        SourceFormat(
            name="fhir-bundle",
            title="HL7 FHIR R4 Bundle, UK Core (Patient, Encounter, Observation, Condition)",
            nodes=("health",),
            raw_unit="fhir-entry",
        ),
        SourceFormat(
            name="cld-csv",
            title="Adult Social Care Client Level Data return (CSV)",
            nodes=("social-care",),
            raw_unit="csv-row",
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
