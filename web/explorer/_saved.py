"""The saved example queries: the demo trust's planning questions, ready to run.

Declared once as data; the explorer's page lists them, the IDE offers the same texts, and
the tests run them. Each names the purpose it is for and the column to chart and map.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SAVED_QUERIES", "SavedQuery", "saved_query"]


@dataclass(frozen=True)
class SavedQuery:
    id: str
    title: str
    description: str
    purpose: str
    query: str
    measure: str
    variables: str = ""


SAVED_QUERIES = (
    SavedQuery(
        id="planning-by-area",
        title="Hospital encounters, open care episodes and footfall by area",
        description=(
            "Service planning across all three agencies: each LSOA's hospital encounters "
            "(health), open adult social care episodes (social care) and footfall in "
            "October 2026 (council). Small counts are suppressed."
        ),
        purpose="service-planning",
        query="""query PlanningByArea($since: Date, $until: Date) {
  areas(first: 203) {
    code
    name
    encounterCount(since: $since, until: $until)
    openCareEpisodes
    footfall(since: $since, until: $until)
  }
}""",
        variables='{"since": "2026-10-01", "until": "2026-10-31"}',
        measure="encounterCount",
    ),
    SavedQuery(
        id="air-quality-by-area",
        title="Air quality by area",
        description=(
            "The council's LoRaWAN air-quality sensors: mean PM2.5 and NO2 per LSOA, "
            "micrograms per cubic metre. Areas without a sensor have no data."
        ),
        purpose="service-planning",
        query="""{
  areas(first: 203) {
    code
    name
    airQuality {
      pm25Mean
      no2Mean
      readingCount
    }
  }
}""",
        measure="airQuality.pm25Mean",
    ),
    SavedQuery(
        id="known-to-both",
        title="People known to both the hospital and adult social care, per area",
        description=(
            "Counts of people each node holds, matched without either seeing the other's "
            "pseudonyms. Small counts are suppressed."
        ),
        purpose="service-planning",
        query="""{
  crossAgencyCounts(nodes: ["health", "social-care"], combine: INTERSECTION) {
    areaCode
    count
    suppressed
  }
}""",
        measure="count",
    ),
)


def saved_query(query_id: str | None) -> SavedQuery | None:
    return next((q for q in SAVED_QUERIES if q.id == query_id), None)
