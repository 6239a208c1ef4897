"""Housing records: one homelessness case from the H-CLIC return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ._rules import (
    HCLIC_DUTY_TYPES,
    InvalidField,
    check_choice,
    check_date,
    check_lsoa,
    check_nhs,
    check_text,
)

__all__ = ["HRA_COMMENCEMENT", "HousingCase"]

# The Homelessness Reduction Act 2017 duties (and H-CLIC) apply to applications from this day.
HRA_COMMENCEMENT = date(2018, 4, 3)


@dataclass(frozen=True, kw_only=True, slots=True)
class HousingCase:
    """One homelessness case: the approach, the latest duty owed, and where the household lives.

    ``duty_type`` is the furthest duty the case reached (prevention, then relief, then the
    main duty), with that duty's start and end dates.
    """

    case_ref: str
    la_person_id: str
    nhs_number: str | None
    approach_date: date
    duty_type: str
    duty_start: date | None
    duty_end: date | None
    reason_code: str | None
    household_type: str | None
    lsoa_code: str | None

    def __post_init__(self) -> None:
        check_text(self, "case_ref")
        check_text(self, "la_person_id")
        check_nhs(self, "nhs_number", optional=True)
        check_date(self, "approach_date")
        if self.approach_date < HRA_COMMENCEMENT:
            raise InvalidField(
                "approach_date",
                self.approach_date.isoformat(),
                "H-CLIC covers applications from 3 April 2018 (Homelessness Reduction Act 2017)",
                "check the date of application",
            )
        check_choice(self, "duty_type", HCLIC_DUTY_TYPES, "Homelessness Reduction Act 2017 duties")
        check_date(self, "duty_start", optional=True)
        check_date(self, "duty_end", optional=True)
        if self.duty_type != "none" and self.duty_start is None:
            raise InvalidField(
                "duty_start", None, f"a {self.duty_type} duty has a start date", "send it"
            )
        if self.duty_start and self.duty_end and self.duty_end < self.duty_start:
            raise InvalidField(
                "duty_end",
                self.duty_end.isoformat(),
                "a duty cannot end before it starts",
                "check the duty's start and end dates",
            )
        check_text(self, "reason_code", optional=True)
        check_text(self, "household_type", optional=True)
        check_lsoa(self, "lsoa_code", optional=True)
