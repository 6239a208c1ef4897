"""The demo trust: which nodes a local ``datatrust up`` runs, and the example query.

Declared once here; ``up``, ``status``, the README and the tests all read it.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

__all__ = [
    "DEMO_NODES",
    "EXAMPLE_PURPOSE",
    "EXAMPLE_QUERY",
    "IDENTITY_PORT_OFFSET",
    "PORTAL_PORT_OFFSET",
    "DemoNode",
    "example_curl",
]


@dataclass(frozen=True, slots=True)
class DemoNode:
    node_id: str
    agency: str
    port_offset: int  # from the gateway's port


DEMO_NODES = (
    DemoNode("council", "Coventry City Council", 1),
    DemoNode("health", "University Hospitals Coventry and Warwickshire NHS Trust", 2),
    DemoNode("social-care", "Coventry City Council, Adult Social Care", 3),
)
IDENTITY_PORT_OFFSET = 4
PORTAL_PORT_OFFSET = 5
"""The citizen portal's port, from the gateway's (the next after the identity server)."""

EXAMPLE_PURPOSE = "service-planning"
EXAMPLE_QUERY = (
    '{ areas(first: 5) { code name footfall(since: "2026-10-01", until: "2026-10-31") '
    "airQuality { pm25Mean no2Mean } encounterCount openCareEpisodes } }"
)


def example_curl(gateway_url: str, data_dir: str | None = None) -> str:
    """The ready-to-paste curl command for the example query against ``gateway_url``.

    It gets its access token through ``datatrust token`` (the real client credentials
    flow); ``data_dir`` is named only when it is not the default.
    """
    body = json.dumps({"query": EXAMPLE_QUERY}, ensure_ascii=True)
    token_command = f"datatrust token --purpose {EXAMPLE_PURPOSE}"
    if data_dir is not None:
        token_command += f" --data-dir {shlex.quote(data_dir)}"
    return (
        f"curl -s {shlex.quote(gateway_url)} -H 'Content-Type: application/json' "
        f"-H 'Purpose: {EXAMPLE_PURPOSE}' -H \"Authorization: Bearer $({token_command})\" "
        f"-d {shlex.quote(body)}"
    )
