"""Adult Social Care Client Level Data (CLD): the quarterly event-level return councils in
England send to NHS England, as CSV.

Column names follow the CLD specification's field names as NHS England's own code uses them
(github.com/NHSDigital/ASC-Client-Level-Data-SALT-ASCOF-transformations): ``LA_Code``,
``Reporting_Period_Start_Date``, ``LA_Person_Unique_Identifier``, ``NHS_Number``,
``Event_Type``, ``Event_Reference``, ``Event_Start_Date``, ``Event_End_Date``,
``Service_Type`` and so on. The submission template writes them with spaces
(``Event Start Date``); both spellings are accepted.

CLD carries the client's postcode, not an LSOA (NHS England derives that centrally), so this
reader takes one LOCAL extra column, ``Local_LSOA_2021_Code``: the ONS 2021 LSOA of residence,
which the council fills from its own address gazetteer. It is ours, not part of CLD.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from datatrust.errors import RecordError

from ._common import Output, build, csv_records, parse_date, read_text
from ._records import CareEvent, InvalidField

__all__ = ["CLD_COLUMNS", "LOCAL_LSOA_COLUMN", "read_cld_csv"]

CLD_COLUMNS = (
    "LA_Code",
    "Reporting_Period_Start_Date",
    "Reporting_Period_End_Date",
    "LA_Person_Unique_Identifier",
    "NHS_Number",
    "Gender",
    "Client_Type",
    "Primary_Support_Reason",
    "Event_Type",
    "Event_Reference",
    "Event_Start_Date",
    "Event_End_Date",
    "Event_Outcome",
    "Service_Type",
    "Service_Component",
    "Delivery_Mechanism",
)
LOCAL_LSOA_COLUMN = "Local_LSOA_2021_Code"
_REQUIRED = (
    "LA_Person_Unique_Identifier",
    "NHS_Number",
    "Event_Type",
    "Event_Reference",
    "Event_Start_Date",
    "Event_End_Date",
    "Service_Type",
)


def read_cld_csv(
    text: str | bytes, source: str, *, now: datetime | None = None
) -> Iterator[Output]:
    """A ``CareEvent`` or a located ``RecordError`` for each row, in file order.

    With ``now``, an event starting more than a day after it is refused (a typed year).
    """
    return csv_records(
        read_text(text, source), source, _REQUIRED, lambda at, row: _event(at, row, now)
    )


def _event(location: str, row: dict[str, str], now: datetime | None) -> Output:
    try:
        started = parse_date(row["event_start_date"], "Event_Start_Date")
        if now is not None and (started - now.date()).days > 1:
            raise InvalidField(
                "Event_Start_Date",
                row["event_start_date"],
                f"more than a day after the time of reading ({now.date()})",
                "check the year",
            )
        ended_text = row["event_end_date"]
        ended = parse_date(ended_text, "Event_End_Date") if ended_text else None
    except InvalidField as error:
        return RecordError(str(error), location=location, field=error.field)
    return build(
        CareEvent,
        location,
        event_reference=row["event_reference"],
        la_person_id=row["la_person_unique_identifier"],
        nhs_number=row["nhs_number"].replace(" ", "") or None,
        event_type=row["event_type"],
        service_type=row["service_type"] or None,
        started_on=started,
        ended_on=ended,
        lsoa_code=row.get(LOCAL_LSOA_COLUMN.lower()) or None,
    )
