"""HL7 FHIR R4 Bundles (collection, transaction, batch, searchset) in UK Core shape.

Each Patient and Encounter entry is validated with the ``fhir.resources`` R4B models (R4B
keeps R4's Patient and Encounter structure unchanged; import takes well under a second), one
resource at a time so a bad entry costs only itself. Then:

- Patient: the NHS number is the identifier with system ``https://fhir.nhs.uk/Id/nhs-number``
  (UK Core); the LSOA of residence is OUR LOCAL extension on ``Patient.address``:
  ``url = https://datatrust.example/fhir/StructureDefinition/lsoa-2021``, ``valueCode`` an
  ONS 2021 LSOA code. The first address carrying the extension wins.
- Encounter: ``subject.reference`` must point at a Patient in the same bundle, either by its
  ``fullUrl`` (``urn:uuid:...``) or as ``Patient/<id>``; the patient's NHS number is copied in.

Other resource types are skipped. Locations are JSON Pointers into the bundle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from fhir.resources.R4B.encounter import Encounter as FhirEncounter
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from datatrust.errors import RecordError, SourceError

from ._common import Output, build, read_text
from ._records import Encounter, Patient

__all__ = ["LSOA_EXTENSION_URL", "NHS_NUMBER_SYSTEM", "read_fhir_bundle"]

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
LSOA_EXTENSION_URL = "https://datatrust.example/fhir/StructureDefinition/lsoa-2021"


def read_fhir_bundle(text: str | bytes, source: str) -> Iterator[Output]:
    """A ``Patient``/``Encounter`` or a located ``RecordError`` per entry, in bundle order."""
    body = read_text(text, source)
    try:
        bundle = json.loads(body)
    except json.JSONDecodeError as error:
        raise SourceError(
            f"{source}:{error.lineno}: not JSON ({error.msg}); send one FHIR Bundle",
            location=source,
        ) from error
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        kind = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        raise SourceError(
            f"{source}: expected a FHIR Bundle, got resourceType {kind!r}; wrap resources "
            "in a Bundle of type collection or transaction",
            location=source,
        )
    entries = bundle.get("entry") or []
    parsed = [_parse(f"{source}#/entry/{index}", entry) for index, entry in enumerate(entries)]
    nhs_numbers: dict[str, str] = {}
    for item in parsed:
        if isinstance(item, tuple) and isinstance(item[1], Patient):
            for reference in item[0]:
                nhs_numbers[reference] = item[1].nhs_number
    return iter([_resolve(item, nhs_numbers) for item in parsed if item is not None])


_Parsed = tuple[list[str], Patient] | tuple[str, FhirEncounter, str] | RecordError | None


def _parse(location: str, entry: Any) -> _Parsed:
    resource = entry.get("resource") if isinstance(entry, dict) else None
    if not isinstance(resource, dict):
        return RecordError(
            "entry has no resource object; give each entry a resource", location=location
        )
    kind = resource.get("resourceType")
    if kind not in ("Patient", "Encounter"):
        return None
    model = FhirPatient if kind == "Patient" else FhirEncounter
    try:
        validated = model.model_validate(resource)
    except ValidationError as error:
        first = error.errors()[0]
        path = "/".join(str(part) for part in first["loc"])
        return RecordError(
            f"{kind} is not valid FHIR R4 at {path}: {first['msg']} "
            f"(value {first.get('input')!r}); fix the resource so it validates",
            location=f"{location}/resource/{path}",
            field=path,
        )
    if isinstance(validated, FhirEncounter):
        return (location, validated, entry.get("fullUrl") or "")
    return _patient(location, entry, validated)


def _patient(location: str, entry: dict[str, Any], patient: FhirPatient) -> _Parsed:
    numbers = [
        identifier.value
        for identifier in patient.identifier or []
        if identifier.system == NHS_NUMBER_SYSTEM and identifier.value
    ]
    if not numbers:
        return RecordError(
            f"Patient has no identifier with system {NHS_NUMBER_SYSTEM}; "
            "add the NHS number as UK Core does",
            location=f"{location}/resource/identifier",
            field="identifier",
        )
    lsoa = None
    for address in patient.address or []:
        for extension in address.extension or []:
            if extension.url == LSOA_EXTENSION_URL:
                lsoa = extension.valueCode
                break
        if lsoa:
            break
    birth = patient.birthDate
    birth_year = birth.year if isinstance(birth, date) else int(str(birth)[:4]) if birth else None
    references = [ref for ref in (entry.get("fullUrl"), f"Patient/{patient.id}") if ref]
    record = build(
        Patient,
        f"{location}/resource",
        nhs_number=numbers[0].replace(" ", ""),
        lsoa_code=lsoa,
        birth_year=birth_year,
        gender=patient.gender,
        source_id=patient.id or entry.get("fullUrl") or location,
    )
    return record if isinstance(record, RecordError) else (references, record)


def _resolve(item: _Parsed, nhs_numbers: dict[str, str]) -> Output:
    if isinstance(item, RecordError):
        return item
    if isinstance(item[1], Patient):
        return item[1]
    location, encounter, full_url = item  # type: ignore[misc]
    reference = encounter.subject.reference if encounter.subject else None
    if reference not in nhs_numbers:
        return RecordError(
            f"subject.reference {reference!r} names no valid Patient in this bundle; "
            "include the Patient and refer to its fullUrl or Patient/<id>",
            location=f"{location}/resource/subject/reference",
            field="subject.reference",
        )
    period = encounter.period
    times = {}
    for name in ("start", "end"):
        value = getattr(period, name) if period else None
        if value is None and name == "end":
            times[name] = None
        elif isinstance(value, datetime) and value.tzinfo is not None:
            times[name] = value.astimezone(UTC)
        else:
            return RecordError(
                f"period.{name} {value!r} must be a dateTime with a time and an offset; "
                "send e.g. 2026-10-01T08:00:00Z",
                location=f"{location}/resource/period/{name}",
                field=f"period.{name}",
            )
    return build(
        Encounter,
        f"{location}/resource",
        encounter_id=encounter.id or full_url,
        nhs_number=nhs_numbers[reference],
        class_code=encounter.class_fhir.code if encounter.class_fhir else None,
        status=encounter.status,
        started_at=times["start"],
        ended_at=times["end"],
    )
