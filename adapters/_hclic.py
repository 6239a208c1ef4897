"""H-CLIC, the Homelessness Case Level Information Collection: the quarterly XML return English
councils send to MHCLG (through DELTA) under the Homelessness Reduction Act 2017.

What is public of the specification (MHCLG's summary of the data requirement; the full
data requirement and its XSD are sent to councils and suppliers on request) gives the shape:
one case per household, linked by a unique case reference, in sections ``Main``
(application and main applicant), ``People``, ``Support``, ``Prevention``, ``Relief``, final
(main) duties, ``Assistance``, temporary accommodation and ``Reviews``. This reader takes::

    <HCLIC LA_Code="E08000026" Period_Start="2026-07-01" Period_End="2026-09-30">
      <Case>
        <CaseRef>CV-H-000001</CaseRef>
        <Main>
          <App_Date>2026-08-04</App_Date>            date of application (approach)
          <Household_Type>...</Household_Type>
          <Reason_Loss>...</Reason_Loss>             reason for loss of last settled home
          <Local_LSOA_2021_Code>E01009522</Local_LSOA_2021_Code>     LOCAL, see below
        </Main>
        <People><Person><Person_Ref>..</Person_Ref><Main_Applicant>Y</Main_Applicant>
          <Local_NHS_Number>9990001000</Local_NHS_Number></Person></People>   LOCAL
        <Prevention><Duty_Start>..</Duty_Start><Duty_End>..</Duty_End></Prevention>
        <Relief>...same...</Relief>
        <MainDuty><Duty_Start>..</Duty_Start><Duty_End>..</Duty_End></MainDuty>
      </Case>
    </HCLIC>

Element names are matched ignoring case, namespaces, ``_`` and ``-`` (suppliers differ).
Two elements are OURS, not H-CLIC's, both filled by the council from its own systems:
``Local_LSOA_2021_Code`` (H-CLIC carries a postcode, not an LSOA) and ``Local_NHS_Number``.

XML is parsed with defusedxml and any DTD is refused, so entity expansion ("billion
laughs") and external entities are never processed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from xml.etree.ElementTree import Element, ParseError, tostring

import defusedxml.ElementTree as SafeTree
from defusedxml import DefusedXmlException

from datatrust.errors import RecordError, SourceError

from ._common import Output, build, parse_date, read_text, with_raw
from ._records import HousingCase, InvalidField

__all__ = ["read_hclic_xml"]

# Section -> duty, furthest first: a case that reached the main duty is reported as "main".
_DUTIES = (("mainduty", "main"), ("relief", "relief"), ("prevention", "prevention"))
_YES = {"y", "yes", "1", "true"}


def read_hclic_xml(
    text: str | bytes, source: str, *, now: datetime | None = None
) -> Iterator[Output]:
    """A ``HousingCase`` or a located ``RecordError`` per ``Case``, in file order."""
    body = read_text(text, source)
    try:
        root = SafeTree.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as error:
        raise SourceError(
            f"{source}: refused: the XML declares a DTD or entities ({type(error).__name__}); "
            "an H-CLIC return needs neither, export it without a DOCTYPE",
            location=source,
        ) from error
    except ParseError as error:
        line, column = error.position
        raise SourceError(
            f"{source}:{line}: not well-formed XML ({str(error).split(':')[0]} at column "
            f"{column}); was the file cut off? Export the return again",
            location=f"{source}:{line}",
        ) from error
    if _name(root) != "hclic":
        raise SourceError(
            f"{source}: expected an H-CLIC return (root element HCLIC), got <{root.tag}>",
            location=source,
        )
    today = now.date() if now is not None else None
    cases = [child for child in root if _name(child) == "case"]
    return (
        with_raw(_case(f"{source}#/HCLIC/Case[{index}]", case, today), _raw(case))
        for index, case in enumerate(cases, start=1)
    )


def _case(location: str, case: Element, today: date | None) -> Output:
    try:
        main = _child(case, "main", "/Main")
        person = _main_applicant(case)
        duty_type, start, end = "none", None, None
        for section, duty in _DUTIES:
            element = _find(case, section)
            if element is not None:
                path = f"/{element.tag.split('}')[-1]}"
                duty_type = duty
                start = _date(_text(element, "dutystart"), f"{path}/Duty_Start", today)
                end = _date(_text(element, "dutyend"), f"{path}/Duty_End", today)
                break
        approach = _date(_text(main, "appdate"), "/Main/App_Date", today)
        if approach is None:
            raise InvalidField("/Main/App_Date", None, "every case has a date", "send App_Date")
        nhs = _text(person, "localnhsnumber")
        return build(
            HousingCase,
            location,
            case_ref=_text(case, "caseref"),
            la_person_id=_text(person, "personref"),
            nhs_number=nhs.replace(" ", "").replace("-", "") if nhs else None,
            approach_date=approach,
            duty_type=duty_type,
            duty_start=start,
            duty_end=end,
            reason_code=_text(main, "reasonloss"),
            household_type=_text(main, "householdtype"),
            lsoa_code=_text(main, "locallsoa2021code"),
        )
    except InvalidField as error:
        return RecordError(str(error), location=f"{location}{error.field}", field=error.field)


def _main_applicant(case: Element) -> Element:
    people = _child(case, "people", "/People")
    persons = [child for child in people if _name(child) == "person"]
    if not persons:
        raise InvalidField("/People/Person", None, "a case has a main applicant", "add a Person")
    for person in persons:
        if (_text(person, "mainapplicant") or "").lower() in _YES:
            return person
    return persons[0]


def _date(value: str | None, path: str, today: date | None) -> date | None:
    if value is None:
        return None
    day = parse_date(value, path)
    if today is not None and (day - today).days > 1:
        raise InvalidField(
            path, value, f"more than a day after the time of reading ({today})", "check it"
        )
    return day


def _name(element: Element) -> str:
    local = element.tag.split("}")[-1] if isinstance(element.tag, str) else ""
    return local.lower().replace("_", "").replace("-", "")


def _find(parent: Element, name: str) -> Element | None:
    return next((child for child in parent if _name(child) == name), None)


def _child(parent: Element, name: str, path: str) -> Element:
    element = _find(parent, name)
    if element is None:
        raise InvalidField(path, None, "this H-CLIC section is required", "send it")
    return element


def _text(parent: Element, name: str) -> str | None:
    element = _find(parent, name)
    text = (element.text or "").strip() if element is not None else ""
    return text or None


def _raw(element: Element) -> str:
    return tostring(element, encoding="unicode")
