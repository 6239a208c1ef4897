"""Point the trust directory at the Compose deployment, before it is signed.

``python deploy/compose_directory.py deploy/secrets/trust/directory.json`` rewrites, in that
file, each member node's ``endpoint`` to where the gateway reaches it (``deploy/gateway.toml``
``[nodes]``) and every token issuer (members' and node-less agencies') to the identity
server's issuer (``deploy/identity.toml``), and raises ``version``. Sign it afterwards:
``datatrust directory sign deploy/secrets/trust/directory.json --data-dir
deploy/secrets/trust``. ``datatrust init`` writes the demo trust's loopback addresses, and
rewrites them again when it re-signs, so run this after every ``init`` that re-signed.
Standard library only.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEPLOY = Path(__file__).resolve().parent


def compose_directory(
    document: dict[str, Any], issuer: str, nodes: dict[str, str]
) -> dict[str, Any]:
    """``document`` with the deployment's issuer and node endpoints, one version higher."""
    issuers = [{"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json"}]
    members = []
    for member in document["members"]:
        url = nodes.get(member["node_id"])
        if url is None:
            raise SystemExit(f"node {member['node_id']!r} is not in the gateway's [nodes]")
        parts = urlsplit(url)
        members.append(
            member | {"endpoint": f"{parts.scheme}://{parts.netloc}", "issuers": issuers}
        )
    agencies = [agency | {"issuers": issuers} for agency in document.get("agencies", [])]
    result = document | {"members": members, "version": document["version"] + 1}
    if agencies:
        result["agencies"] = agencies
    return result


def deployment_addresses(deploy: Path = DEPLOY) -> tuple[str, dict[str, str]]:
    """The issuer (identity.toml) and the node URLs (gateway.toml) of the deployment."""
    identity = tomllib.loads((deploy / "identity.toml").read_text(encoding="utf-8"))
    gateway = tomllib.loads((deploy / "gateway.toml").read_text(encoding="utf-8"))
    return identity["issuer"].rstrip("/"), gateway["nodes"]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: compose_directory.py DIRECTORY.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    issuer, nodes = deployment_addresses()
    document = compose_directory(json.loads(path.read_text(encoding="utf-8")), issuer, nodes)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"{path}: version {document['version']}, issuer {issuer}; now sign it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
