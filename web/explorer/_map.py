"""A by-area result as a map: the shipped LSOA boundaries, each shaded by its value.

The boundaries are ONS 2021 LSOAs of Coventry (``datatrust/demo/coventry_lsoa_2021.geo.json``,
Open Government Licence v3.0; see PROVENANCE.md there), projected once on load to SVG
coordinates (equirectangular, x scaled by cos(latitude) at the area's middle: at city scale
the distortion is invisible). Values fall into five quantile classes of the values shown;
a suppressed area is hatched and its title says "suppressed", an area without data is
grey, and an area the answer did not include is white. Pure apart from reading the file.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from markupsafe import Markup

from datatrust.web.explorer._results import ResultTable
from datatrust.web.explorer._svg import INK, PALETTE, hatch_pattern, text

__all__ = [
    "ATTRIBUTION",
    "BOUNDARIES_FILE",
    "Area",
    "AreaMap",
    "LegendEntry",
    "area_map",
    "demo_boundaries",
    "project_boundaries",
]

BOUNDARIES_FILE = "coventry_lsoa_2021.geo.json"
ATTRIBUTION = (
    "Boundaries: Source: Office for National Statistics licensed under the Open Government "
    "Licence v.3.0. Contains OS data © Crown copyright and database right 2021."
)
WIDTH = 720
NO_DATA_FILL = "#b1b4b6"
NOT_ASKED_FILL = "#ffffff"


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    path: str
    """SVG path data in the map's coordinates."""


@dataclass(frozen=True)
class Boundaries:
    areas: tuple[Area, ...]
    width: int
    height: int

    @functools.cached_property
    def codes(self) -> frozenset[str]:
        return frozenset(a.code for a in self.areas)


@dataclass(frozen=True)
class LegendEntry:
    label: str
    fill: str
    """A colour, or ``hatch`` for the suppressed pattern."""


@dataclass(frozen=True)
class AreaMap:
    svg: Markup
    legend: tuple[LegendEntry, ...]
    mapped: int
    unmapped: tuple[str, ...]
    """Codes in the answer that the shipped boundaries do not cover."""


def project_boundaries(geojson: Mapping[str, Any], width: int = WIDTH) -> Boundaries:
    """Each feature's polygon(s) as SVG path data, fitted to ``width`` pixels across."""
    features = geojson.get("features")
    if not isinstance(features, list) or not features:
        raise ValueError("the boundary file has no features (a GeoJSON FeatureCollection)")
    rings = []
    for number, feature in enumerate(features):
        geometry = feature.get("geometry") or {}
        props = feature.get("properties") or {}
        if geometry.get("type") == "Polygon":
            polygons = [geometry["coordinates"]]
        elif geometry.get("type") == "MultiPolygon":
            polygons = geometry["coordinates"]
        else:
            raise ValueError(
                f"boundary feature {number} ({props.get('code')}) is a "
                f"{geometry.get('type')!r}, not a Polygon or MultiPolygon"
            )
        rings.append((props, [ring for polygon in polygons for ring in polygon]))
    points = [p for _props, rs in rings for ring in rs for p in ring]
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    squash = math.cos(math.radians((south + north) / 2))
    scale = width / ((east - west) * squash)
    height = round((north - south) * scale)

    def xy(point: Sequence[float]) -> str:
        return f"{(point[0] - west) * squash * scale:.1f},{(north - point[1]) * scale:.1f}"

    areas = tuple(
        Area(
            code=str(props.get("code")),
            name=str(props.get("name")),
            path="".join(
                "M" + "L".join(xy(p) for p in ring[:-1] if ring) + "Z" for ring in rs if ring
            ),
        )
        for props, rs in rings
    )
    return Boundaries(areas, width, height)


@functools.cache
def demo_boundaries() -> Boundaries:
    """The shipped Coventry boundaries, read and projected once per process."""
    source = resources.files("datatrust.demo").joinpath(BOUNDARIES_FILE)
    return project_boundaries(json.loads(source.read_text(encoding="utf-8")))


def area_map(
    table: ResultTable, column_key: str, boundaries: Boundaries, *, map_id: str = "map"
) -> AreaMap:
    """The map of ``column_key`` by area; ValueError if the table is not by area."""
    if table.area_column is None:
        raise ValueError(f"the table {table.key!r} has no column of area codes to map")
    index = table.column_index(column_key)
    if index is None:
        raise ValueError(f"the table {table.key!r} has no column {column_key!r}")
    label = table.columns[index].label
    cells = {row[table.area_column].text: row[index] for row in table.rows}
    numbers = sorted(c.number for c in cells.values() if c.number is not None)
    breaks = _quantile_breaks(numbers, len(PALETTE))
    hatch = f"{map_id}-hatch"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="datatrust-map" role="img" '
        f'viewBox="0 0 {boundaries.width} {boundaries.height}" width="{boundaries.width}" '
        f'height="{boundaries.height}" aria-labelledby="{map_id}-title {map_id}-desc" '
        'focusable="false">',
        f'<title id="{map_id}-title">Map of {text(label)} by LSOA</title>',
        f'<desc id="{map_id}-desc">Coventry\'s 2021 Lower layer Super Output Areas shaded '
        f"by {text(label)}: darker is higher. Suppressed areas are hatched. The table has "
        "every value.</desc>",
        f"<defs>{hatch_pattern(hatch)}</defs>",
    ]
    used: set[str] = set()
    for area in boundaries.areas:
        cell = cells.get(area.code)
        if cell is None:
            fill, words = NOT_ASKED_FILL, "not in this answer"
        elif cell.number is not None:
            fill, words = PALETTE[_class_of(cell.number, breaks)], cell.text
        elif cell.is_suppressed:
            fill, words = f"url(#{hatch})", cell.text
        else:
            fill, words = NO_DATA_FILL, cell.text
        used.add(fill)
        parts.append(
            f'<path d="{area.path}" fill="{fill}" stroke="{INK}" stroke-width="0.4">'
            f"<title>{text(area.name)} ({text(area.code)}): {text(words)}</title></path>"
        )
    parts.append("</svg>")
    legend = [
        LegendEntry(_range_label(breaks, n, numbers), colour)
        for n, colour in enumerate(PALETTE)
        if colour in used
    ]
    if f"url(#{hatch})" in used:
        legend.append(LegendEntry("suppressed (too few to publish)", "hatch"))
    if NO_DATA_FILL in used:
        legend.append(LegendEntry("no data", NO_DATA_FILL))
    if NOT_ASKED_FILL in used:
        legend.append(LegendEntry("not in this answer", NOT_ASKED_FILL))
    unmapped = tuple(sorted(code for code in cells if code not in boundaries.codes))
    svg = Markup("".join(parts))  # noqa: S704 (every value in it went through text())
    return AreaMap(svg, tuple(legend), len(cells) - len(unmapped), unmapped)


def _quantile_breaks(numbers: Sequence[float], classes: int) -> list[float]:
    """Upper bounds of each class but the last (values at a bound go in the lower class)."""
    if not numbers:
        return []
    last = len(numbers) - 1
    bounds = [numbers[min(last, (len(numbers) * k) // classes)] for k in range(1, classes)]
    return sorted(set(bounds))[: classes - 1]


def _class_of(value: float, breaks: Sequence[float]) -> int:
    for n, bound in enumerate(breaks):
        if value <= bound:
            return n
    return len(breaks)


def _range_label(breaks: Sequence[float], n: int, numbers: Sequence[float]) -> str:
    low = numbers[0] if n == 0 else breaks[n - 1]
    high = breaks[n] if n < len(breaks) else numbers[-1]
    if n == 0:
        return f"{_fmt(low)} to {_fmt(high)}"
    return f"over {_fmt(low)} to {_fmt(high)}"


def _fmt(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"
