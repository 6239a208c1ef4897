"""A synthetic H-CLIC quarterly return for the council (shape: ``adapters/_hclic.py``)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from xml.sax.saxutils import escape

__all__ = ["hclic_return"]

_HOUSEHOLDS = (
    "Single adult male",
    "Single adult female",
    "Single parent with dependent children - female",
    "Couple with dependent children",
    "Couple / two adults without dependent children",
)
_REASONS = (
    "End of private rented tenancy - assured shorthold",
    "Family or friends no longer willing or able to accommodate",
    "Domestic abuse",
    "Non-violent relationship breakdown with partner",
    "Eviction from supported housing",
)


def hclic_return(rng: random.Random, lsoa_codes: list[str], nhs_numbers: list[str]) -> str:
    """One return, July to September 2026; ``nhs_numbers`` has one entry per case (or "")."""
    cases = []
    for index, nhs in enumerate(nhs_numbers, start=1):
        applied = date(2026, 7, 1) + timedelta(days=rng.randrange(90))
        sections = []
        start = applied + timedelta(days=rng.randrange(0, 4))
        stage = rng.choice(("none", "prevention", "prevention", "relief", "main"))
        for section, duty in (
            ("Prevention", "prevention"),
            ("Relief", "relief"),
            ("MainDuty", "main"),
        ):
            if stage == "none":
                break
            end = start + timedelta(days=rng.randrange(5, 57))
            last = duty == stage
            ending = "" if last and rng.random() < 0.5 else f"<Duty_End>{end}</Duty_End>"
            sections.append(f"<{section}><Duty_Start>{start}</Duty_Start>{ending}</{section}>")
            if last:
                break
            start = end
        person = f"<Person_Ref>CV-P-{index:06d}</Person_Ref><Main_Applicant>Y</Main_Applicant>"
        if nhs:
            person += f"<Local_NHS_Number>{nhs}</Local_NHS_Number>"
        cases.append(
            "  <Case>\n"
            f"    <CaseRef>CV-H-{index:06d}</CaseRef>\n"
            f"    <Main><App_Date>{applied}</App_Date>"
            f"<Household_Type>{escape(rng.choice(_HOUSEHOLDS))}</Household_Type>"
            f"<Reason_Loss>{escape(rng.choice(_REASONS))}</Reason_Loss>"
            f"<Local_LSOA_2021_Code>{rng.choice(lsoa_codes)}</Local_LSOA_2021_Code></Main>\n"
            f"    <People><Person>{person}</Person></People>\n"
            + "".join(f"    {section}\n" for section in sections)
            + "  </Case>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<HCLIC LA_Code="E08000026" Period_Start="2026-07-01" Period_End="2026-09-30">\n'
        + "".join(cases)
        + "</HCLIC>\n"
    )
