"""HL7 FHIR R4 Bundles (collection, transaction, batch, searchset) in UK Core shape.

Each Patient, Encounter, Observation and Condition entry is validated with the
``fhir.resources`` R4B models (R4B keeps R4's structure for these four), one resource at a
time so a bad entry costs only itself. Then:

- Patient: the NHS number is the identifier with system ``https://fhir.nhs.uk/Id/nhs-number``
  (UK Core); the LSOA of residence is OUR LOCAL extension on ``Patient.address``:
  ``url = https://datatrust.example/fhir/StructureDefinition/lsoa-2021``, ``valueCode`` an
  ONS 2021 LSOA code. The first address carrying the extension wins.
- Encounter, Observation, Condition: ``subject.reference`` must point at a Patient in the
  same bundle, either by its ``fullUrl`` (``urn:uuid:...``) or as ``Patient/<id>``; the
  patient's NHS number is copied in. ``meta.versionId`` becomes ``version``.

Resource types the trust deliberately does not take (:data:`SKIPPED_RESOURCE_TYPES`:
organisations, practitioners, medication...) are skipped; any other type is reported, so a
misspelt or unexpected resource is never dropped silently. A ``dateTime`` without an offset
is read as Europe/London time (see ``_time``). Locations are JSON Pointers into the bundle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from fhir.resources.R4B.condition import Condition as FhirCondition
from fhir.resources.R4B.encounter import Encounter as FhirEncounter
from fhir.resources.R4B.observation import Observation as FhirObservation
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from datatrust.errors import RecordError, SourceError

from ._common import Output, build, read_text, with_raw
from ._fhir_clinical import condition, localise, observation
from ._records import Encounter, InvalidField, Patient
from ._time import parse_timestamp

__all__ = ["LSOA_EXTENSION_URL", "NHS_NUMBER_SYSTEM", "SKIPPED_RESOURCE_TYPES", "read_fhir_bundle"]

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
LSOA_EXTENSION_URL = "https://datatrust.example/fhir/StructureDefinition/lsoa-2021"
SKIPPED_RESOURCE_TYPES = frozenset(
    {
        "AllergyIntolerance",
        "Appointment",
        "CarePlan",
        "Composition",
        "Device",
        "DiagnosticReport",
        "DocumentReference",
        "EpisodeOfCare",
        "Flag",
        "HealthcareService",
        "Immunization",
        "Location",
        "Medication",
        "MedicationRequest",
        "MedicationStatement",
        "MessageHeader",
        "OperationOutcome",
        "Organization",
        "Practitioner",
        "PractitionerRole",
        "Procedure",
        "Provenance",
        "RelatedPerson",
        "ServiceRequest",
        "Specimen",
    }
)
_MODELS: dict[str, Any] = {
    "Patient": FhirPatient,
    "Encounter": FhirEncounter,
    "Observation": FhirObservation,
    "Condition": FhirCondition,
}


def read_fhir_bundle(
    text: str | bytes, source: str, *, now: datetime | None = None
) -> Iterator[Output]:
    """A record or a located ``RecordError`` per entry we read, in bundle order."""
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
    if not isinstance(entries, list):
        raise SourceError(f"{source}: Bundle.entry must be a JSON array", location=source)
    parsed = []
    for index, entry in enumerate(entries):
        location = f"{source}#/entry/{index}"
        parsed.append((location, json.dumps(entry, ensure_ascii=False), _parse(location, entry)))
    nhs_numbers: dict[str, str] = {}
    for _location, _raw, item in parsed:
        if isinstance(item, tuple) and isinstance(item[1], Patient):
            for reference in item[0]:
                nhs_numbers[reference] = item[1].nhs_number
    return iter(
        [
            with_raw(_resolve(location, item, nhs_numbers, now), raw)
            for location, raw, item in parsed
            if item is not None
        ]
    )


def _error(location: str, path: str, message: str) -> RecordError:
    """An error at ``path`` (a JSON Pointer inside the entry's resource)."""
    if not path:
        return RecordError(message, location=location)
    return RecordError(message, location=f"{location}/resource{path}", field=path.lstrip("/"))


def _parse(location: str, entry: Any) -> Any:
    """None (skipped), a RecordError, ``(references, Patient)`` or a validated FHIR model."""
    resource = entry.get("resource") if isinstance(entry, dict) else None
    if not isinstance(resource, dict):
        return _error(location, "", "entry has no resource object; give each entry a resource")
    kind = resource.get("resourceType")
    if kind in SKIPPED_RESOURCE_TYPES:
        return None
    if kind not in _MODELS:
        return _error(
            location,
            "/resourceType",
            f"resourceType {kind!r} is not one this reader takes ({', '.join(_MODELS)}) "
            "or knows to skip; check the resource type",
        )
    try:
        validated = _MODELS[kind].model_validate(localise(resource))
    except InvalidField as error:
        return _error(location, f"/{error.field}", f"{kind} {error}")
    except ValidationError as error:
        first = error.errors()[0]
        path = "/".join(str(part) for part in first["loc"])
        return _error(
            location,
            f"/{path}",
            f"{kind} is not valid FHIR R4 at {path}: {first['msg']} "
            f"(value {first.get('input')!r}); fix the resource so it validates",
        )
    if isinstance(validated, FhirPatient):
        return _patient(location, entry, validated)
    return validated


def _patient(location: str, entry: dict[str, Any], patient: FhirPatient) -> Any:
    numbers = [
        identifier.value
        for identifier in patient.identifier or []
        if identifier.system == NHS_NUMBER_SYSTEM and identifier.value
    ]
    if not numbers:
        return _error(
            location,
            "/identifier",
            f"Patient has no identifier with system {NHS_NUMBER_SYSTEM}; "
            "add the NHS number as UK Core does",
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


def _resolve(location: str, item: Any, nhs_numbers: dict[str, str], now: datetime | None) -> Any:
    if isinstance(item, RecordError):
        return item
    if isinstance(item, tuple) and isinstance(item[1], Patient):
        return item[1]
    resource = item
    reference = resource.subject.reference if resource.subject else None
    if reference not in nhs_numbers:
        return RecordError(
            f"subject.reference {reference!r} names no valid Patient in this bundle; "
            "include the Patient and refer to its fullUrl or Patient/<id>",
            location=f"{location}/resource/subject/reference",
            field="subject.reference",
        )
    nhs = nhs_numbers[reference]
    try:
        if isinstance(resource, FhirObservation):
            return observation(f"{location}/resource", resource, nhs, now)
        if isinstance(resource, FhirCondition):
            return condition(f"{location}/resource", resource, nhs, now)
        return _encounter(location, resource, nhs, now)
    except InvalidField as error:
        path = error.field.replace(".", "/")
        return RecordError(
            f"{resource.__resource_type__} {error}",
            location=f"{location}/resource/{path}",
            field=error.field,
        )


def _encounter(location: str, encounter: FhirEncounter, nhs: str, now: datetime | None) -> Output:
    period = encounter.period
    times: dict[str, datetime | None] = {}
    for name in ("start", "end"):
        value = getattr(period, name) if period else None
        if value is None and name == "end":
            times[name] = None
        elif isinstance(value, datetime) and value.tzinfo is not None:
            times[name] = parse_timestamp(
                value.astimezone(UTC).isoformat(), f"period.{name}", now=now
            )
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
        encounter_id=encounter.id or location,
        nhs_number=nhs,
        class_code=encounter.class_fhir.code if encounter.class_fhir else None,
        status=encounter.status,
        started_at=times["start"],
        ended_at=times["end"],
        version=encounter.meta.versionId if encounter.meta else None,
    )
