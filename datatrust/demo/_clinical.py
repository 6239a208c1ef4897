"""Synthetic FHIR Observations and Conditions for a demo patient (UK Core shape, SNOMED CT)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

__all__ = ["clinical_entries"]

SNOMED = "http://snomed.info/sct"
_CONDITIONS = (
    ("44054006", "Diabetes mellitus type 2"),
    ("195967001", "Asthma"),
    ("38341003", "Hypertensive disorder"),
    ("35489007", "Depressive disorder"),
)


def clinical_entries(
    rng: random.Random, number: int, patient_url: str, start: datetime
) -> list[dict[str, object]]:
    """Zero to two weight observations and maybe one condition for patient ``number``."""
    entries: list[dict[str, object]] = []
    for visit in range(rng.randrange(3)):
        effective = start + timedelta(minutes=rng.randrange(30 * 24 * 60))
        entries.append(
            {
                "fullUrl": f"urn:uuid:00000000-0000-4000-8000-{number:06d}{visit:06d}",
                "resource": {
                    "resourceType": "Observation",
                    "id": f"obs-{number:05d}-{visit + 1}",
                    "meta": {"versionId": "1"},
                    "status": "final",
                    "code": {
                        "coding": [{"system": SNOMED, "code": "27113001", "display": "Body weight"}]
                    },
                    "subject": {"reference": patient_url},
                    "effectiveDateTime": effective.isoformat(),
                    "valueQuantity": {
                        "value": round(rng.uniform(45, 120), 1),
                        "unit": "kg",
                        "system": "http://unitsofmeasure.org",
                        "code": "kg",
                    },
                },
            }
        )
    if rng.random() < 0.3:
        code, display = rng.choice(_CONDITIONS)
        onset = 1990 + rng.randrange(36)
        entries.append(
            {
                "fullUrl": f"urn:uuid:00000000-0000-4000-9000-{number:012d}",
                "resource": {
                    "resourceType": "Condition",
                    "id": f"con-{number:05d}",
                    "meta": {"versionId": "1"},
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
                    "subject": {"reference": patient_url},
                    "onsetDateTime": str(onset),
                    "recordedDate": f"{onset + rng.randrange(2)}-0{1 + rng.randrange(9)}-15",
                },
            }
        )
    return entries
