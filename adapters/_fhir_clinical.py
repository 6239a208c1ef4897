"""Observation and Condition resources, and FHIR dates and times as canonical UTC values.

FHIR ``dateTime`` may be a year, a month, a date or a full time with an offset. A date
without a time is placed at midnight Europe/London (the trust's zone), a year or month at
its first day; a time always has an offset (the FHIR regex requires it; zone-less times are
given one before validation, see :func:`localise`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.condition import Condition as FhirCondition
from fhir.resources.R4B.observation import Observation as FhirObservation

from ._common import Output, build
from ._records import Condition, InvalidField, Observation
from ._time import LOCAL_ZONE, parse_timestamp

__all__ = ["condition", "fhir_moment", "localise", "observation"]

_ZONELESS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")


def localise(value: Any, path: str = "") -> Any:
    """``value`` with every zone-less ``dateTime`` string read as Europe/London and given
    its UTC offset, so validation accepts it; an impossible local time raises InvalidField."""
    if isinstance(value, dict):
        return {key: localise(item, f"{path}/{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [localise(item, f"{path}/{index}") for index, item in enumerate(value)]
    if isinstance(value, str) and _ZONELESS.match(value):
        return parse_timestamp(value, path.lstrip("/"), earliest=False).isoformat()
    return value


def fhir_moment(
    value: Any, path: str, *, now: datetime | None, earliest: bool = True
) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware UTC datetime (see the module docstring)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, date):
        text = f"{value.isoformat()}T00:00:00"
    else:
        text = f"{(str(value) + '-01-01')[:10]}T00:00:00"
    return parse_timestamp(text, path, now=now, earliest=earliest)


def observation(
    location: str, resource: FhirObservation, nhs_number: str, now: datetime | None
) -> Output:
    system, code, display = _coding(resource.code, "code")
    value = unit = None
    if resource.valueQuantity is not None and resource.valueQuantity.value is not None:
        value = float(resource.valueQuantity.value)
        unit = resource.valueQuantity.unit or resource.valueQuantity.code
    elif resource.valueInteger is not None:
        value = float(resource.valueInteger)
    period = resource.effectivePeriod
    effective, name = resource.effectiveDateTime, "effectiveDateTime"
    if effective is None and resource.effectiveInstant is not None:
        effective, name = resource.effectiveInstant, "effectiveInstant"
    if effective is None and period is not None:
        effective, name = period.start, "effectivePeriod/start"
    return build(
        Observation,
        location,
        observation_id=resource.id or location,
        version=resource.meta.versionId if resource.meta else None,
        nhs_number=nhs_number,
        status=resource.status,
        code_system=system,
        code=code,
        display=display,
        value=value,
        unit=unit,
        effective_at=fhir_moment(effective, name, now=now),
    )


def condition(
    location: str, resource: FhirCondition, nhs_number: str, now: datetime | None
) -> Output:
    system, code, display = _coding(resource.code, "code")
    status = None
    if resource.clinicalStatus is not None and resource.clinicalStatus.coding:
        status = resource.clinicalStatus.coding[0].code
    onset, name = resource.onsetDateTime, "onsetDateTime"
    if onset is None and resource.onsetPeriod is not None:
        onset, name = resource.onsetPeriod.start, "onsetPeriod/start"
    recorded = resource.recordedDate
    if isinstance(recorded, datetime):
        recorded = recorded.astimezone(LOCAL_ZONE).date()
    return build(
        Condition,
        location,
        condition_id=resource.id or location,
        version=resource.meta.versionId if resource.meta else None,
        nhs_number=nhs_number,
        code_system=system,
        code=code,
        display=display,
        clinical_status=status,
        onset_at=fhir_moment(onset, name, now=now, earliest=False),
        recorded_on=recorded,
    )


def _coding(concept: Any, path: str) -> tuple[str, str, str | None]:
    """The first coding with both a system and a code, and its display (or the text)."""
    for coding in (concept.coding or []) if concept is not None else []:
        if coding.system and coding.code:
            return coding.system, coding.code, coding.display or concept.text
    raise InvalidField(
        path,
        concept.text if concept is not None else None,
        "needs a coding with a system and a code (e.g. SNOMED CT http://snomed.info/sct)",
        "code the concept, not only its text",
    )
