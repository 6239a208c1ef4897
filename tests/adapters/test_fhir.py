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


def test_observations_conditions_and_versions_parse_and_unknown_types_are_reported() -> None:
    from datetime import date

    from datatrust.adapters import Condition, Observation

    records = list(read_fhir_bundle(fixture("fhir_bundle_clinical.json"), "c.json"))

    assert records[:4] == [
        # NHS number written spaced 3-3-4
        Patient(
            nhs_number="9990000018",
            lsoa_code=None,
            birth_year=1948,
            gender="female",
            source_id="pat-0001",
        ),
        Observation(
            observation_id="obs-0001",
            version="2",
            nhs_number="9990000018",
            status="final",
            code_system="http://snomed.info/sct",
            code="27113001",
            display="Body weight",
            value=72.5,
            unit="kg",
            effective_at=datetime(2026, 10, 2, 8, 14, tzinfo=UTC),
        ),
        # a zone-less effectiveDateTime, read as Europe/London (BST); a coded value
        Observation(
            observation_id="obs-0002",
            version=None,
            nhs_number="9990000018",
            status="preliminary",
            code_system="http://snomed.info/sct",
            code="1104441000000107",
            display="Smoking status",
            value=None,
            unit=None,
            effective_at=datetime(2026, 10, 2, 8, 20, tzinfo=UTC),
        ),
        # onset "1998-03": before 2000 is fine for a clinical onset
        Condition(
            condition_id="con-0001",
            version="3",
            nhs_number="9990000018",
            code_system="http://snomed.info/sct",
            code="44054006",
            display="Diabetes mellitus type 2",
            clinical_status="active",
            onset_at=datetime(1998, 3, 1, tzinfo=UTC),
            recorded_on=date(2026, 10, 2),
        ),
    ]
    errors = [(r.location, r.reason) for r in records if isinstance(r, RecordError)]
    assert errors == [
        (
            "c.json#/entry/5/resource",
            "status 'done' is invalid: must be one of registered, preliminary, final, amended, "
            "corrected, cancelled, entered-in-error, unknown (FHIR R4 ObservationStatus); use "
            "one of those codes",
        ),
        (
            "c.json#/entry/6/resource/subject/reference",
            "subject.reference 'Group/ward-12' names no valid Patient in this bundle; include "
            "the Patient and refer to its fullUrl or Patient/<id>",
        ),
        (
            "c.json#/entry/7/resource/code",
            "Condition code 'chest pain' is invalid: needs a coding with a system and a code "
            "(e.g. SNOMED CT http://snomed.info/sct); code the concept, not only its text",
        ),
        (
            "c.json#/entry/8/resource/resourceType",
            "resourceType 'Claim' is not one this reader takes (Patient, Encounter, Observation, "
            "Condition) or knows to skip; check the resource type",
        ),
    ]
    # the Organization entry (4) is skipped without an error
    assert records[-1] == Encounter(
        encounter_id="enc-0009",
        nhs_number="9990000018",
        class_code="AMB",
        status="finished",
        started_at=at(2, 8),
        ended_at=at(2, 8, 40),
        version="4",
    )
    assert len(records) == 9


def test_every_fhir_error_carries_its_entry_with_nhs_numbers_redacted() -> None:
    records = list(read_fhir_bundle(fixture("fhir_bundle_bad.json"), "b.json"))

    first = records[0]
    assert isinstance(first, RecordError)
    assert first.details["raw"].startswith('{"fullUrl": "urn:uuid:0a000000-0000-4000-8000-')
    assert '"value": "[NHS]"' in first.details["raw"]
    assert "9990000017" not in first.details["raw"]


def test_an_impossible_local_time_names_the_element() -> None:
    bundle = (
        '{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": '
        '{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, '
        '"effectiveDateTime": "2026-03-29T01:30:00"}}]}'
    )

    (error,) = read_fhir_bundle(bundle, "b.json")

    assert isinstance(error, RecordError)
    assert error.location == "b.json#/entry/0/resource/effectiveDateTime"
    assert error.reason == (
        "Observation effectiveDateTime '2026-03-29T01:30:00' is invalid: a time without a zone "
        "is read as Europe/London, where this time does not exist (clocks go forward); send "
        "the time with an offset, e.g. +01:00 or Z"
    )


def test_an_encounter_from_before_2000_or_the_future_is_refused() -> None:
    text = fixture("fhir_bundle.json")
    old = text.replace("2026-10-02T21:14:00+00:00", "1970-01-01T00:00:00+00:00")

    errors = [r for r in read_fhir_bundle(old, "b") if isinstance(r, RecordError)]
    future = [
        r
        for r in read_fhir_bundle(text, "b", now=datetime(2026, 10, 1, tzinfo=UTC))
        if isinstance(r, RecordError)
    ]

    assert [(e.location, e.details["field"]) for e in errors] == [
        ("b#/entry/1/resource/period/start", "period.start")
    ]
    assert [e.location for e in future] == [
        "b#/entry/1/resource/period/start",
        "b#/entry/3/resource/period/start",
        "b#/entry/4/resource/period/start",
    ]
