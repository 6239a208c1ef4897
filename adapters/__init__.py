"""Readers for each agency's source formats, with no I/O of their own.

An adapter takes the bytes or text a real source emits (The Things Stack uplinks,
FreeRADIUS accounting detail files, HL7 FHIR R4 bundles, the adult social care Client
Level Data return) and turns them into canonical records, or into a located error for each
record it cannot read. Adapters never touch a database, the network or a clock, so they can
be tested on captured traffic alone and reused by every ingest source.
"""

__all__: list[str] = []
