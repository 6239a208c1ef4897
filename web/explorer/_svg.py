"""Small SVG helpers shared by the chart and the map: escaping, the hatch, the palette.

Everything is drawn with presentation attributes (``fill``, ``stroke``), never ``style``
attributes or elements, so the strict Content-Security-Policy (``style-src 'self'``) allows
it, and no script is involved: the pictures work without JavaScript.
"""

from __future__ import annotations

from html import escape

__all__ = ["BAR", "HATCH_ID", "INK", "PALETTE", "hatch_pattern", "text"]

INK = "#0b0c0c"  # GOV.UK text colour
BAR = "#1d70b8"  # GOV.UK blue
PALETTE = ("#deebf7", "#9ecae1", "#4292c6", "#2171b5", "#08306b")
"""Five sequential blues (ColorBrewer Blues, colour-blind safe), light = low."""
HATCH_ID = "suppressed-hatch"


def text(value: object) -> str:
    return escape(str(value), quote=True)


def hatch_pattern(pattern_id: str) -> str:
    """Diagonal stripes: how a suppressed cell looks, told apart from any colour."""
    return (
        f'<pattern id="{pattern_id}" patternUnits="userSpaceOnUse" width="8" height="8" '
        'patternTransform="rotate(45)">'
        '<rect width="8" height="8" fill="#ffffff"/>'
        '<line x1="0" y1="0" x2="0" y2="8" stroke="#505a5f" stroke-width="3"/>'
        "</pattern>"
    )
