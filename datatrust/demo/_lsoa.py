"""The real ONS 2021 LSOAs of Coventry, shipped as ``coventry_lsoa_2021.csv`` beside this module.

Where the codes and names come from is in ``PROVENANCE.md`` beside this module.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["Lsoa", "coventry_lsoas"]

_CODE = re.compile(r"^E01\d{6}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Lsoa:
    """One 2021 Lower layer Super Output Area: its ONS code and name, and a point inside it.

    ``latitude``/``longitude`` are the mean of the generalised boundary's vertices (WGS84),
    good enough to place demo sensors, not a population-weighted centroid.
    """

    code: str
    name: str
    latitude: float | None = None
    longitude: float | None = None

    def __post_init__(self) -> None:
        if not _CODE.match(self.code):
            raise ValueError(f"LSOA code {self.code!r} must match ^E01\\d{{6}}$ (ONS GSS code)")
        if not self.name.startswith("Coventry "):
            raise ValueError(f"LSOA name {self.name!r} must be 'Coventry NNNX' (ONS naming)")


@cache
def _load() -> tuple[Lsoa, ...]:
    text = resources.files(__package__).joinpath("coventry_lsoa_2021.csv").read_text("utf-8")
    return tuple(
        Lsoa(
            code=row["lsoa21cd"],
            name=row["lsoa21nm"],
            latitude=float(row["latitude"]),
            longitude=float(row["longitude"]),
        )
        for row in csv.DictReader(io.StringIO(text))
    )


def coventry_lsoas() -> list[Lsoa]:
    """Every Coventry LSOA (2021), sorted by code."""
    return list(_load())
