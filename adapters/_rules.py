"""The rules records enforce, each quoting where it comes from, and the error that names it."""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

__all__ = [
    "ACCT_STATUS_TYPES",
    "CLD_EVENT_TYPES",
    "CONDITION_CLINICAL_STATUSES",
    "ENCOUNTER_CLASSES",
    "ENCOUNTER_STATUSES",
    "GENDERS",
    "HCLIC_DUTY_TYPES",
    "OBSERVATION_STATUSES",
    "PRESENCE_KINDS",
    "SENSOR_KINDS",
    "InvalidField",
    "check_choice",
    "check_count",
    "check_date",
    "check_lsoa",
    "check_mac",
    "check_nhs",
    "check_text",
    "check_tts_id",
    "check_utc",
    "finite",
    "is_valid_nhs_number",
    "normalise_mac",
    "set_field",
]

_LSOA = re.compile(r"^[EW]01\d{6}$")
_LSOA_RULE = "an ONS 2021 LSOA code matches ^[EW]01\\d{6}$, e.g. E01009522"
# The Things Stack: 3-36 lowercase letters, digits and single dashes, no dash at either end.
_TTS_ID = re.compile(r"^[a-z0-9](?:-?[a-z0-9]){2,35}$")
_TTS_ID_RULE = (
    "The Things Stack device IDs are 3-36 lowercase letters, digits and single dashes, "
    "not starting or ending with a dash"
)
_MAC = re.compile(r"^[0-9a-f]{12}$")
# ``aa:bb:cc:dd:ee:ff`` once lower-cased and dashes made colons: already in normal form.
_MAC_NORMAL = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
_ZERO = timedelta(0)

SENSOR_KINDS = ("air-quality", "people-counter")
ACCT_STATUS_TYPES = ("Start", "Interim-Update", "Stop")
# HL7 FHIR R4 Encounter.status (http://hl7.org/fhir/R4/valueset-encounter-status.html)
ENCOUNTER_STATUSES = (
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
)
# HL7 v3 ActEncounterCode, the value set of FHIR R4 Encounter.class
ENCOUNTER_CLASSES = (
    "AMB",
    "EMER",
    "FLD",
    "HH",
    "IMP",
    "ACUTE",
    "NONAC",
    "OBSENC",
    "PRENC",
    "SS",
    "VR",
)
# FHIR R4 AdministrativeGender
GENDERS = ("male", "female", "other", "unknown")
# Adult Social Care Client Level Data: the four event types of the care pathway
CLD_EVENT_TYPES = ("Request", "Assessment", "Service", "Review")
# HL7 FHIR R4 ObservationStatus (http://hl7.org/fhir/R4/valueset-observation-status.html)
OBSERVATION_STATUSES = (
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
)
# HL7 FHIR R4 Condition clinical status (http://hl7.org/fhir/R4/valueset-condition-clinical.html)
CONDITION_CLINICAL_STATUSES = (
    "active",
    "recurrence",
    "relapse",
    "inactive",
    "remission",
    "resolved",
)
# Cisco Meraki Scanning API v3: one feed type per radio
PRESENCE_KINDS = ("wifi", "ble")
# Homelessness Reduction Act 2017 duties as H-CLIC records them (prevention s195, relief
# s189B, main s193), or none owed yet
HCLIC_DUTY_TYPES = ("prevention", "relief", "main", "none")


class InvalidField(ValueError):
    """A record field breaks one of the record's rules."""

    def __init__(self, field_name: str, value: Any, rule: str, fix: str) -> None:
        super().__init__(f"{field_name} {value!r} is invalid: {rule}; {fix}")
        self.field = field_name
        self.value = value
        self.rule = rule
        self.fix = fix


def is_valid_nhs_number(value: str) -> bool:
    """True if ``value`` is 10 digits whose last digit is the modulus 11 check digit."""
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return False
    total = sum(
        int(digit) * weight for digit, weight in zip(value[:9], range(10, 1, -1), strict=True)
    )
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(value[9])


def normalise_mac(value: str) -> str:
    """``AA-BB-CC-DD-EE-FF``, ``aabb.ccdd.eeff`` or ``AABBCCDDEEFF`` as ``aa:bb:cc:dd:ee:ff``."""
    if type(value) is str and (normal := _common_mac(value)) is not None:
        return normal
    digits = re.sub(r"[-:.]", "", value.strip()).lower()
    if not _MAC.match(digits):
        raise ValueError(value)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


@functools.lru_cache(maxsize=4096)
def _common_mac(value: str) -> str | None:
    """``value`` normalised if it is written ``AA-BB-..`` or ``aa:bb:..``, else ``None``.

    Cached: the same devices and access points come back record after record."""
    normal = value.lower().replace("-", ":")
    return normal if _MAC_NORMAL.fullmatch(normal) else None


def set_field(record: Any, name: str, value: Any) -> None:
    object.__setattr__(record, name, value)


def check_text(record: Any, name: str, *, optional: bool = False) -> None:
    value = getattr(record, name)
    if value is None and optional:
        return
    if type(value) is str and value and not value[0].isspace():
        return  # the common case, decided without copying the string
    if not isinstance(value, str) or not value.strip():
        raise InvalidField(name, value, "a non-empty string is required", f"supply {name}")


def check_choice(record: Any, name: str, choices: tuple[str, ...], source: str) -> None:
    value = getattr(record, name)
    if value not in choices:
        raise InvalidField(
            name, value, f"must be one of {', '.join(choices)} ({source})", "use one of those codes"
        )


def check_utc(record: Any, name: str, *, optional: bool = False) -> None:
    value = getattr(record, name)
    if value is None and optional:
        return
    if type(value) is datetime and value.tzinfo is UTC:
        return  # what every timestamp parser here returns
    if not isinstance(value, datetime) or value.utcoffset() != _ZERO:
        raise InvalidField(
            name,
            value,
            "timestamps must be timezone-aware UTC",
            "give the time with a Z or +00:00 offset",
        )


def check_date(record: Any, name: str, *, optional: bool = False) -> None:
    value = getattr(record, name)
    if value is None and optional:
        return
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidField(name, value, "must be a calendar date", "send YYYY-MM-DD")


def check_lsoa(record: Any, name: str, *, optional: bool = False) -> None:
    value = getattr(record, name)
    if value is None and optional:
        return
    if not isinstance(value, str) or not _LSOA.match(value):
        raise InvalidField(name, value, _LSOA_RULE, "use the 2021 LSOA code, not its name")


def check_nhs(record: Any, name: str, *, optional: bool = False) -> None:
    value = getattr(record, name)
    if value is None and optional:
        return
    if not isinstance(value, str) or not is_valid_nhs_number(value):
        raise InvalidField(
            name,
            value,
            "an NHS number is 10 digits whose last is a valid modulus 11 check digit "
            "(NHS Data Dictionary, NHS NUMBER)",
            "check the number was copied correctly, or leave it empty if unknown",
        )


def check_mac(record: Any, name: str) -> None:
    value = getattr(record, name)
    try:
        set_field(record, name, normalise_mac(value))
    except (ValueError, AttributeError, TypeError):
        raise InvalidField(
            name,
            value,
            "a MAC address is 12 hex digits (IEEE 802)",
            "write it as AA-BB-CC-DD-EE-FF",
        ) from None


def check_count(record: Any, name: str) -> None:
    value = getattr(record, name)
    if value is None or (type(value) is int and value >= 0):
        return
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidField(name, value, "must be a whole number >= 0", "send an unsigned integer")


@functools.lru_cache(maxsize=4096)
def _is_tts_id(value: str) -> bool:
    """Cached: a feed names the same few hundred devices over and over."""
    return _TTS_ID.match(value) is not None


def check_tts_id(record: Any, name: str) -> None:
    value = getattr(record, name)
    if type(value) is str and _is_tts_id(value):
        return
    if not isinstance(value, str) or not _TTS_ID.match(value):
        raise InvalidField(name, value, _TTS_ID_RULE, "use the device ID registered on the network")


def finite(name: str, value: Any) -> float:
    if type(value) is float and value - value == 0.0:  # finite: inf - inf and nan are nan
        return value
    if type(value) is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidField(name, value, "must be a finite number", "send a number")
    return float(value)
