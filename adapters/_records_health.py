"""Clinical records from FHIR bundles beyond Patient and Encounter: observations and conditions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ._rules import (
    CONDITION_CLINICAL_STATUSES,
    OBSERVATION_STATUSES,
    check_choice,
    check_date,
    check_nhs,
    check_text,
    check_utc,
    finite,
    set_field,
)

__all__ = ["Condition", "Observation"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Observation:
    """One FHIR R4 Observation (a measurement or finding) about a patient."""

    observation_id: str
    version: str | None
    nhs_number: str
    status: str
    code_system: str
    code: str
    display: str | None
    value: float | None
    unit: str | None
    effective_at: datetime | None

    def __post_init__(self) -> None:
        check_text(self, "observation_id")
        check_text(self, "version", optional=True)
        check_nhs(self, "nhs_number")
        check_choice(self, "status", OBSERVATION_STATUSES, "FHIR R4 ObservationStatus")
        check_text(self, "code_system")
        check_text(self, "code")
        check_text(self, "display", optional=True)
        if self.value is not None:
            set_field(self, "value", finite("value", self.value))
        check_text(self, "unit", optional=True)
        check_utc(self, "effective_at", optional=True)


@dataclass(frozen=True, kw_only=True, slots=True)
class Condition:
    """One FHIR R4 Condition (a problem or diagnosis) of a patient."""

    condition_id: str
    version: str | None
    nhs_number: str
    code_system: str
    code: str
    display: str | None
    clinical_status: str | None
    onset_at: datetime | None
    recorded_on: date | None

    def __post_init__(self) -> None:
        check_text(self, "condition_id")
        check_text(self, "version", optional=True)
        check_nhs(self, "nhs_number")
        check_text(self, "code_system")
        check_text(self, "code")
        check_text(self, "display", optional=True)
        if self.clinical_status is not None:
            check_choice(
                self, "clinical_status", CONDITION_CLINICAL_STATUSES, "FHIR R4 condition-clinical"
            )
        check_utc(self, "onset_at", optional=True)
        check_date(self, "recorded_on", optional=True)
