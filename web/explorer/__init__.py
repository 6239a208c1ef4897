"""The analyst explorer: ask the trust a GraphQL question in a browser, see tables, charts, maps.

Mounted at ``/explorer`` on the portal's server, on its foundation (session, CSRF,
sign-in, security headers, layout). Server-rendered and working without JavaScript; the
GraphiQL IDE is the enhancement. The rendering (tables with suppressed cells marked,
SVG bar charts, SVG maps of LSOAs) is pure and exported for reuse and tests.
"""

from datatrust.web.explorer._app import EXPLORER_COOKIE, create_explorer_app
from datatrust.web.explorer._chart import bar_chart
from datatrust.web.explorer._columns import query_columns
from datatrust.web.explorer._map import ATTRIBUTION, area_map, demo_boundaries, project_boundaries
from datatrust.web.explorer._results import result_tables
from datatrust.web.explorer._saved import SAVED_QUERIES
from datatrust.web.explorer._view import results_view

__all__ = [
    "ATTRIBUTION",
    "EXPLORER_COOKIE",
    "SAVED_QUERIES",
    "area_map",
    "bar_chart",
    "create_explorer_app",
    "demo_boundaries",
    "project_boundaries",
    "query_columns",
    "result_tables",
    "results_view",
]
