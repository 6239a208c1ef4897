from datetime import UTC, datetime

import pytest

from datatrust.adapters import Encounter, Patient, read_fhir_bundle
from datatrust.errors import RecordError, SourceError

from ._fixtures import fixture


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC)


def test_patients_and_encounters_parse_with_nhs_numbers_resolved_from_the_bundle() -> None:
    records = list(read_fhir_bundle(fixture("fhir_bundle.json"), "bundle.json"))

    assert records == [
        Patient(
            nhs_number="9990000018",
            lsoa_code="E01009522",
            birth_year=1948,
            gender="female",
            source_id="pat-0001",
        ),
        Encounter(
            encounter_id="enc-0001",
            nhs_number="9990000018",
            class_code="EMER",
            status="finished",
            started_at=at(2, 21, 14),
            ended_at=at(3, 1, 2),
        ),
        Patient(
            nhs_number="9990000026",
            lsoa_code=None,
            birth_year=1990,
            gender="male",
            source_id="pat-0002",
        ),
        Encounter(
            encounter_id="enc-0002",
            nhs_number="9990000026",
            class_code="AMB",
            status="finished",
            started_at=at(5, 8, 30),
            ended_at=at(5, 9, 0),
        ),
        Encounter(
            encounter_id="enc-0003",
            nhs_number="9990000018",
            class_code="IMP",
            status="in-progress",
            started_at=at(20, 14),
            ended_at=None,
        ),
    ]


def test_bad_entries_are_located_errors_and_good_entries_after_them_still_parse() -> None:
    records = list(read_fhir_bundle(fixture("fhir_bundle_bad.json"), "b.json"))

    errors = [(r.location, r.reason) for r in records if isinstance(r, RecordError)]
    assert errors == [
        (
            "b.json#/entry/0/resource",
            "nhs_number '9990000017' is invalid: an NHS number is 10 digits whose last is a "
            "valid modulus 11 check digit (NHS Data Dictionary, NHS NUMBER); check the number "
            "was copied correctly, or leave it empty if unknown",
        ),
        (
            "b.json#/entry/1/resource/subject/reference",
            "subject.reference 'urn:uuid:0a000000-0000-4000-8000-000000000001' names no valid "
            "Patient in this bundle; include the Patient and refer to its fullUrl or "
            "Patient/<id>",
        ),
        (
            "b.json#/entry/2/resource/identifier",
            "Patient has no identifier with system https://fhir.nhs.uk/Id/nhs-number; "
            "add the NHS number as UK Core does",
        ),
        (
            "b.json#/entry/4/resource/period/start",
            "period.start datetime.date(2026, 10, 2) must be a dateTime with a time and an "
            "offset; send e.g. 2026-10-01T08:00:00Z",
        ),
    ]
    assert records[3] == Patient(
        nhs_number="9990000034",
        lsoa_code="E01009524",
        birth_year=1961,
        gender="other",
        source_id="pat-0003",
    )
    assert records[5] == Encounter(
        encounter_id="enc-0004",
        nhs_number="9990000034",
        class_code="EMER",
        status="finished",
        started_at=at(4, 2),
        ended_at=at(4, 5, 30),
    )


def test_a_resource_that_is_not_valid_fhir_names_the_element() -> None:
    bundle = (
        '{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
        '{"resourceType": "Patient", "birthDate": "1950-13-01"}}]}'
    )

    (error,) = read_fhir_bundle(bundle, "b.json")

    assert isinstance(error, RecordError)
    assert error.location == "b.json#/entry/0/resource/birthDate"
    assert error.reason.startswith("Patient is not valid FHIR R4 at birthDate:")


def test_a_document_that_is_not_a_bundle_is_refused_whole() -> None:
    with pytest.raises(SourceError, match=r"^p.json: expected a FHIR Bundle, got resourceType "):
        read_fhir_bundle('{"resourceType": "Patient"}', "p.json")
